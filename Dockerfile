# Switchboard: one image for every role (serve, web, worker, migrate).
#   docker build -t switchboard .
#   docker run -p 8080:8080 -v switchboard:/var/lib/switchboard switchboard
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A regular install (not editable): the source is not needed at run time.
COPY . /src
RUN pip install /src && rm -rf /src

# Never run as root. The data directory exists in the image and belongs to the user, so a
# fresh named volume mounted there starts with that owner.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/switchboard switchboard \
    && mkdir -p /var/lib/switchboard/data \
    && chown -R switchboard:switchboard /var/lib/switchboard
USER switchboard
# The working directory holds the default SQLite database (./switchboard.db).
WORKDIR /var/lib/switchboard

ENV SWITCHBOARD_HOST=0.0.0.0 \
    SWITCHBOARD_PORT=8080 \
    SWITCHBOARD_DATA_DIR=/var/lib/switchboard/data
EXPOSE 8080

# No curl in the slim image: the standard library asks /healthz (non-2xx → exit 1).
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SWITCHBOARD_PORT', '8080'), timeout=8)"]

CMD ["switchboard", "serve"]
