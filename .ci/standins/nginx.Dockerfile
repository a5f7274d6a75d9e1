# CI stand-in for nginx:<version>-alpine (see ../standin-images.sh): Debian forky's nginx package (imported from
# mmdebstrap's tar as aixcl-standin/nginx-rootfs), not the Alpine build, laid out where the official image has its
# parts: nginx on PATH, /etc/nginx, the unprivileged user nginx (101:101), /var/log/nginx/{access,error}.log linked to
# the container's stdout and stderr, busybox wget (the official image's is busybox's too), SIGQUIT to stop.
FROM aixcl-standin/nginx-rootfs:forky
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN groupadd --system --gid 101 nginx \
 && useradd --system --uid 101 --gid nginx --no-create-home --home-dir /nonexistent --shell /bin/false nginx \
 && ln -s /bin/busybox /usr/bin/wget \
 && mkdir -p /var/cache/nginx && chown 101:101 /var/cache/nginx \
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log \
 && nginx -v
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
