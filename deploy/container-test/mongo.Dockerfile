# A stand-in for mongo:7.0.40, made here because no image registry is reachable from the test
# machines: SecantusDB (a MongoDB-wire server) on the local Python base, with a `mongosh` that
# answers compose's health check (a ping) and nothing else. Production pulls the real image.
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm
FROM ${PYTHON_IMAGE}
RUN python -m venv /opt/secantus \
    && /opt/secantus/bin/pip install --no-cache-dir "secantusdb>=0.7.0b3" pymongo
COPY mongosh /usr/local/bin/mongosh
RUN chmod 755 /usr/local/bin/mongosh && mkdir -p /data/db
VOLUME /data/db
EXPOSE 27017
CMD ["/opt/secantus/bin/secantusd-py", "--host", "0.0.0.0", "--port", "27017", "--storage-path", "/data/db", "--log-level", "WARNING"]
