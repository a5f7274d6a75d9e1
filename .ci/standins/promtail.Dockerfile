# CI stand-in for grafana/promtail (see ../standin-images.sh): a Debian image with bash (the compose
# healthcheck speaks HTTP over bash's /dev/tcp), the binary at /usr/bin/promtail, running as root like the
# official image.
FROM debian:bookworm-slim
COPY promtail /usr/bin/promtail
ENTRYPOINT ["/usr/bin/promtail"]
CMD ["-config.file=/etc/promtail/config.yml"]
