# CI stand-in for prom/prometheus (see ../standin-images.sh). Like the official busybox-based image: wget for
# the healthcheck, /bin/prometheus and /bin/promtool, user nobody (65534) owning /prometheus.
FROM debian:bookworm-slim
COPY busybox /bin/busybox
COPY prometheus promtool /bin/
RUN ln -s /bin/busybox /usr/bin/wget && mkdir -p /prometheus /etc/prometheus && chown 65534:65534 /prometheus
USER 65534
EXPOSE 9090
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
