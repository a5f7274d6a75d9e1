# CI stand-in for grafana/grafana (see ../standin-images.sh): the Grafana backend that
# grafana/scripts/grafana-server.sh builds (the only version the Go module proxy serves, a 10.1 development
# commit, without the frontend), laid out like the official image: home /usr/share/grafana, data
# /var/lib/grafana owned by uid 472, GF_PATHS_* as the official image sets them, `grafana` on PATH (./aixcl runs
# `grafana cli admin reset-admin-password`), busybox wget for the healthcheck.
FROM debian:bookworm-slim
ENV GF_PATHS_CONFIG=/etc/grafana/grafana.ini \
    GF_PATHS_DATA=/var/lib/grafana \
    GF_PATHS_HOME=/usr/share/grafana \
    GF_PATHS_LOGS=/var/log/grafana \
    GF_PATHS_PLUGINS=/var/lib/grafana/plugins \
    GF_PATHS_PROVISIONING=/etc/grafana/provisioning \
    PATH=/usr/share/grafana/bin:$PATH
COPY busybox /bin/busybox
COPY home/ /usr/share/grafana/
COPY run.sh /run.sh
RUN ln -s /bin/busybox /usr/bin/wget \
 && useradd --uid 472 --gid 0 --no-create-home --home-dir /usr/share/grafana grafana \
 && mkdir -p /etc/grafana/provisioning /var/lib/grafana/plugins /var/log/grafana \
 && cp /usr/share/grafana/conf/sample.ini /etc/grafana/grafana.ini \
 && chown -R 472:0 /var/lib/grafana /var/log/grafana
USER 472
WORKDIR /usr/share/grafana
EXPOSE 3000
ENTRYPOINT ["/run.sh"]
