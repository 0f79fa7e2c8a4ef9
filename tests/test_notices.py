"""What a failure tells the user: what went wrong and what to do, never a host, a path or a stack trace."""

from scoring.errors import ServiceUnavailableError
from views.state import _unavailable


def test_a_service_failure_names_no_host_or_path():
    exc = ServiceUnavailableError("the scoring API at http://10.1.2.3:8000 is unreachable ([Errno 111] "
                                  "/srv/scoring/data/clients.duckdb); check that it is running")
    for lang in ("fr", "en"):
        text = _unavailable(exc).text(lang)
        assert "10.1.2.3" not in text and "/srv/" not in text and "Errno" not in text
        assert "ServiceUnavailableError" in text or "indisponible" in text or "unavailable" in text
