# newsroom-notify worker image (multi-stage; the final stage has no build tools).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip install --no-cache-dir --upgrade pip \
 && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 notify
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
USER notify
WORKDIR /home/notify
ENV NEWSROOM_DATA_DIR=/data NEWSROOM_WEB_HOST=0.0.0.0 NEWSROOM_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 6066
HEALTHCHECK --interval=10s --timeout=3s --retries=6 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:6066/healthz', timeout=2).status != 200)"
ENTRYPOINT ["newsroom-notify"]
CMD ["worker"]
