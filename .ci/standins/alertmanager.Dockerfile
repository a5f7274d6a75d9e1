# CI stand-in for prom/alertmanager (see ../standin-images.sh). Like the official busybox-based image: wget for
# the healthcheck, /bin/alertmanager and /bin/amtool, user nobody (65534) owning /alertmanager. Built from the
# test binary of scripts/components.sh, whose web UI is a one-page placeholder (the API is Alertmanager's own).
FROM debian:bookworm-slim
COPY busybox /bin/busybox
COPY alertmanager amtool /bin/
RUN ln -s /bin/busybox /usr/bin/wget && mkdir -p /alertmanager /etc/alertmanager && chown 65534:65534 /alertmanager
USER 65534
EXPOSE 9093
WORKDIR /alertmanager
ENTRYPOINT ["/bin/alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
