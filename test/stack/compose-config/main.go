// compose-config loads docker-compose.yml with compose-go, the loader Docker Compose itself uses, and prints
// the resolved project as JSON: the same schema validation and interpolation `docker compose config` does,
// without Docker. Used by test/stack/compose-config.test.ts.
//
// Usage: compose-config <compose file>[,<override file>...] <project dir> <env file> [<profile>,...]
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func run(file, dir, envFile string, profiles []string) error {
	// Several files, comma-separated, merge as `docker compose -f a -f b` merges them (the HA profile).
	opts, err := cli.NewProjectOptions(strings.Split(file, ","),
		cli.WithName("aixcl"),
		cli.WithWorkingDirectory(dir),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		// Every profile unless named, so the on-demand cli service is validated too; named, the services ./aixcl
		// starts with them (the layouts of the bus), as compose enables them.
		cli.WithProfiles(profiles),
	)
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return err
	}
	out, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

func main() {
	if len(os.Args) != 4 && len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: compose-config <compose file>[,<override file>...] <project dir> <env file> [<profile>,...]")
		os.Exit(2)
	}
	profiles := []string{"*"}
	if len(os.Args) == 5 {
		profiles = strings.Split(os.Args[4], ",")
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3], profiles); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
