# The gateway image of network/docker/compose.yaml (profile "scaleout"): the package as
# pyproject.toml installs it, dependencies pinned by constraints.txt. Build context: the
# repository root.
FROM python:3.11-slim-bookworm
WORKDIR /opt/anchorline
COPY pyproject.toml constraints.txt README.md ./
COPY gateway ./gateway
COPY network ./network
COPY chaincode ./chaincode
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --home-dir /var/lib/anchorline anchorline \
    && mkdir -p /var/lib/anchorline && chown anchorline /var/lib/anchorline
USER anchorline
# SIGTERM drains and exits 0 (README, "Running several gateways").
STOPSIGNAL SIGTERM
CMD ["anchorline", "gateway", "run"]
