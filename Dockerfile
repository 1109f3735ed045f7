# authswitch: build a wheel set in one stage, run as a non-root user from a slim image.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
COPY connection_map ./connection_map
COPY flags ./flags
# Same install step as README.md ("pip install ."), into a virtualenv that is copied over.
RUN python -m venv /opt/authswitch \
    && /opt/authswitch/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin authswitch
COPY --from=build /opt/authswitch /opt/authswitch
ENV PATH=/opt/authswitch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001
EXPOSE 8080
# The config (and the map and flags files it names) is mounted from outside at /etc/authswitch.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/_authswitch/livez', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["authswitch"]
CMD ["serve", "--config", "/etc/authswitch/authswitch.yaml"]
