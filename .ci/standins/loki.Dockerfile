# CI stand-in for grafana/loki (see ../standin-images.sh). Like the official image since 3.6: no shell, the
# binary at /usr/bin/loki, uid 10001 owning /loki (a new named volume copies that ownership).
FROM scratch
COPY rootfs/ /
COPY --chown=10001:10001 empty/ /loki/
COPY loki /usr/bin/loki
USER 10001
EXPOSE 3100
ENTRYPOINT ["/usr/bin/loki"]
CMD ["-config.file=/etc/loki/local-config.yaml"]
