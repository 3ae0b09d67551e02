# The core worker (seed 000 step 4.1): one image for every agent.
#   docker build -t core-voice-worker:latest .
#   docker run --rm -e BACKEND_URL -e SWITCHOVER_TOKEN -e LIVEKIT_URL \
#       -e LIVEKIT_API_KEY -e LIVEKIT_API_SECRET -e OPENAI_API_KEY core-voice-worker:latest
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8081

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
# the livekit extra brings livekit-agents and the plugin of every provider a runtime config
# can name (openai, anthropic, google, groq, mistralai, cartesia, elevenlabs, deepgram,
# rime, assemblyai): each agent's own keys and models reach its plugin
RUN pip install ".[livekit]" \
    && useradd --create-home --uid 10001 worker
USER worker

# LiveKit's worker health endpoint listens on $PORT (Cloud Run sets it to 8080).
EXPOSE 8081
# exec form: SIGTERM reaches the worker, which drains running calls (DRAIN_TIMEOUT).
ENTRYPOINT ["switchover", "worker"]
CMD ["start"]
