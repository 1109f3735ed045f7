# authswitch: install into a virtualenv in a build stage, run it as a non-root user from a slim
# image. Every dependency ships a manylinux wheel, so neither stage needs a compiler.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY proxy ./proxy
COPY connection_map ./connection_map
COPY flags ./flags
COPY foundation ./foundation
# Same install step as README.md ("pip install -c constraints.txt ."), pinned to the project's
# one lock, into a virtualenv that is copied over; with the `tracing` extra, so that
# `tracing.enabled` (OpenTelemetry) can be switched on without another image.
# The import check fails the build, not the first request, when lxml's and xmlsec's bundled
# libxml2 versions disagree.
RUN python -m venv /opt/authswitch \
    && /opt/authswitch/bin/pip install --no-cache-dir -c constraints.txt '.[tracing]' \
    && /opt/authswitch/bin/python -I -c "import lxml.etree, xmlsec, proxy.app, proxy.ops.tracing"

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="authswitch" \
      org.opencontainers.image.description="Transparent SSO callback proxy: legacy -> new auth provider, per connection" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed uid/gid (10001) so Kubernetes' runAsUser/runAsGroup/fsGroup can name them.
RUN groupadd --system --gid 10001 authswitch \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin authswitch
COPY --from=build /opt/authswitch /opt/authswitch
# Bytecode was compiled at install time; nothing is written at run time, so the root
# filesystem can be mounted read-only.
# The ops listener binds all interfaces in a container (probes and Prometheus reach the pod's
# address); keep its port off any public load balancer (a NetworkPolicy does on Kubernetes).
ENV PATH=/opt/authswitch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AUTHSWITCH__OPS__HOST=0.0.0.0
USER 10001:10001
# 8080: customer traffic only (listen.port); 9464: the ops listener (ops.port): /livez,
# /readyz, /metrics and the console.
EXPOSE 8080 9464
# The config (and the connection map it names) is mounted from outside at /etc/authswitch;
# it must set listen.host: 0.0.0.0 and keep ops.port 9464, which this check assumes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9464/livez', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["authswitch"]
CMD ["serve", "--config", "/etc/authswitch/authswitch.yaml"]
