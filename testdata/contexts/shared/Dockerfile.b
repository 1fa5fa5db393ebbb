FROM busybox
COPY shared.txt /srv/
COPY b.txt /srv/
