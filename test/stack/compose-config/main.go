// compose-config loads docker-compose.yml with compose-go, the loader Docker Compose itself uses, and prints
// the resolved project as JSON: the same schema validation and interpolation `docker compose config` does,
// without Docker. Used by test/stack/compose-config.test.ts.
//
// Usage: compose-config <compose file>[,<override file>...] <project dir> <env file>
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func run(file, dir, envFile string) error {
	// Several files, comma-separated, merge as `docker compose -f a -f b` merges them (the HA profile).
	opts, err := cli.NewProjectOptions(strings.Split(file, ","),
		cli.WithName("aixcl"),
		cli.WithWorkingDirectory(dir),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		// Every profile, so the on-demand cli service is validated too.
		cli.WithProfiles([]string{"*"}),
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
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: compose-config <compose file>[,<override file>...] <project dir> <env file>")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
