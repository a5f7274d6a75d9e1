# CI stand-in for versity/versitygw (see ../standin-images.sh). Laid out like the release image, which v1.8.0's own
# Dockerfile builds on Alpine: the binary at /usr/local/bin/versitygw (not /app: that is only its build stage's
# folder), the module's docker-entrypoint.sh as the entrypoint, /tmp/vgw made, running as root. Here on the Debian
# stand-in (sh, sed and mkdir, which the compose entrypoint uses) with busybox for the healthcheck's wget. The
# binary is scripts/components.sh's, built from the Go module at the pinned tag with CGO_ENABLED=0 like the release.
FROM debian:bookworm-slim
COPY busybox /bin/busybox
COPY versitygw docker-entrypoint.sh /usr/local/bin/
RUN ln -s /bin/busybox /usr/bin/wget && chmod +x /usr/local/bin/docker-entrypoint.sh && mkdir -p /tmp/vgw
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
