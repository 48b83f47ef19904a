# HER2/ER Explorer, production launch: HAProxy + one Streamlit worker per core (deploy/serve.py),
# the same as `make serve`. Debian bookworm, like the machines the app is tested on.
#
#   docker build -t her2er-explorer .
#   docker run --rm -p 8501:8501 -e WORKERS=2 her2er-explorer     -> http://localhost:8501
#
# Several containers: deploy/compose/ (sticky HAProxy) or deploy/kubernetes/ (cookie affinity).
FROM python:3.11-slim-bookworm

# HAProxy is the session-affine proxy; setpriv (util-linux, already in the base image) lets the
# launcher's children die with it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# The app's bytecode, written while /app is still writable: its user cannot write it, so each
# worker would otherwise compile the app's ~100 modules at every start (~0.15 s of CPU on the
# benchmark machine, on the first page's path). The list is benchmarks/coldstart.py's APP_SOURCES.
RUN python -m compileall -q app.py ui_mapping.py ui her2er_dash deploy
RUN useradd --create-home --uid 10001 explorer
USER explorer

# The proxy listens on every interface inside the container; the workers stay on loopback.
ENV PYTHONUNBUFFERED=1 \
    ADDRESS=0.0.0.0 \
    PORT=8501
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
# Exec form: the launcher is PID 1 and receives SIGTERM from `docker stop` itself.
CMD ["python", "-m", "deploy.serve"]
