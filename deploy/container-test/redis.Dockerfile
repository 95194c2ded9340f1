# A stand-in for redis:7.4.11-alpine, made here because no image registry is reachable from the
# test machines: Debian's redis-server on the local Python base. Like the official image, a
# `redis-server` started without a config file listens for other containers (protected mode
# off). Production pulls the real image.
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm
FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
