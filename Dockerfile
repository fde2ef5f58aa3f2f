FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY core core
COPY db db
COPY collector collector
COPY api api
COPY web web
COPY server server
COPY migrations migrations
COPY sdk sdk
COPY examples examples
# Editable, so examples/ (the demo agent) stays beside the code.
RUN pip install --no-cache-dir -e . ./sdk
ENV CAUSELINE_HOST=0.0.0.0
EXPOSE 8000 4318 4317
CMD ["causeline", "serve"]
