import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// CI reaches no registry: every upstream image a compose file pins needs a stand-in in .ci/standin-images.sh, or the
// Docker tier (and, for the HA profile, its tests) cannot run there; README.md says what each stand-in is.
const root = fileURLToPath(new URL("../../", import.meta.url));
const read = (path: string) => readFileSync(join(root, path), "utf8");
const script = read(".ci/standin-images.sh");
const readme = read("README.md");

/** `image: <repository>:<tag>` lines of a compose file, our own images (aixcl-*) left out. */
function pinned(file: string): { repository: string; tag: string }[] {
  return [...read(file).matchAll(/^\s*image:\s*["']?([^"'\s:]+):([^"'\s@]+)/gm)]
    .map(([, repository, tag]) => ({ repository: repository!, tag: tag! }))
    .filter(({ repository }) => !repository.startsWith("aixcl-"));
}

describe.each(["docker-compose.yml", "docker-compose.ha.yml"])("the upstream images %s pins have CI stand-ins", (file) => {
  const images = pinned(file);

  it("pins some", () => {
    expect(images.length).toBeGreaterThan(0);
  });

  it.each(images.map(({ repository, tag }) => [`${repository}:${tag}`, repository]))(
    "%s: .ci/standin-images.sh builds it and README.md's table says what it is",
    (image, repository) => {
      // Tagged by image_tag <repository> (or standin_component <repository> ..., which calls it).
      expect(script).toMatch(new RegExp(`(image_tag|standin_component) ${repository!.replace(/[./]/g, "\\$&")}\\b`));
      expect(readme).toContain(`| \`${image}\``);
    },
  );
});

describe("the HA profile's stand-ins", () => {
  it("lay versitygw out where the compose entrypoint execs it", () => {
    const exec = /exec (\/\S+versitygw) /.exec(read("docker-compose.ha.yml"))?.[1];
    expect(exec).toBe("/usr/local/bin/versitygw");
    expect(read(".ci/standins/versitygw.Dockerfile")).toMatch(/^COPY versitygw .*\/usr\/local\/bin\/$/m);
  });

  it("refuse an nginx without the upstream `resolve` the gateway uses (1.27.3)", () => {
    expect(read("loki/gateway/nginx.conf")).toMatch(/server loki-1:3100 resolve/);
    expect(script).toContain("NGINX_MINIMUM=1.27.3");
  });
});
