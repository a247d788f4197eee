"""The /v1 gateway: FastAPI app served by uvicorn (locally and under Lambda Web Adapter)."""
