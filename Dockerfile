# TelcoPulse dashboard image: the Streamlit pages, served on ECS Fargate with TELCOPULSE_MODE=aws.
# Dashboard dependencies only: no Spark and no Java. The stream job ships to Glue separately.
# Build from the repository root, for the CPU the task runs on (DashboardCpuArchitecture):
#   docker build --platform linux/amd64 -t telcopulse-dashboard .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONPATH=/app \
    HOME=/home/app \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_FILE_WATCHER_TYPE=none \
    STREAMLIT_CLIENT_TOOLBAR_MODE=viewer

# What Home.py, pages/, dashboard/ and the backend modules they use import at run time, at
# the versions the test suite runs (tests/infra checks them against pyproject.toml).
RUN pip install --no-cache-dir \
        "boto3==1.44.8" \
        "duckdb==2.0.1" \
        "h3==4.5.0" \
        "orjson==3.13.0" \
        "pandas==2.3.3" \
        "plotly==7.1.0" \
        "pyarrow==26.0.1" \
        "pyathena==4.2.1" \
        "pydantic-settings==2.16.3" \
        "pydeck==0.9.3" \
        "streamlit==1.67.0" \
        "streamlit-autorefresh==1.0.1" \
    && useradd --create-home --home-dir /home/app --uid 10001 --user-group --shell /usr/sbin/nologin app

WORKDIR /app
# Code stays owned by root: the app user can read it, not change it. From glue_job/ only the
# Spark-free modules the dashboard uses (event contract, job defaults and table layout).
COPY Home.py ./
COPY .streamlit/ .streamlit/
COPY pages/ pages/
COPY dashboard/ dashboard/
COPY backend/ backend/
COPY glue_job/__init__.py glue_job/contract.py glue_job/defaults.py glue_job/legacy.py glue_job/tables.py \
     glue_job/operator_aliases.csv glue_job/

USER 10001:10001
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4)"]

CMD ["streamlit", "run", "Home.py", "--server.headless=true", "--server.address=0.0.0.0", "--server.port=8501", "--browser.gatherUsageStats=false"]
