"""schemathesis over the app's own OpenAPI schema, against the live server: no answer is
a server error, and every answer matches its documented status, type and schema.

(Driven through hypothesis directly: schemathesis' pytest loader reaches into a pytest
internal that pytest 9 removed.)"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tgmed_api.config import ApiSettings
from tgmed_api.main import create_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# the schema the app publishes; building it needs no database
OPENAPI = create_app(ApiSettings(database_url="postgresql://unused")).openapi()
OPERATIONS = [(method.upper(), path) for path, item in OPENAPI["paths"].items() for method in item]


@pytest.fixture(scope="module")
def api_schema(api_server, api_key):
    return schemathesis.openapi.from_url(
        f"{api_server.url}/openapi.json", headers={"Authorization": f"Bearer {api_key}"}
    )


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_api_conforms_to_its_schema(api_schema, api_server, api_key, method, path):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case) -> None:
        case.call_and_validate(
            base_url=api_server.url,
            checks=CHECKS,
            headers={"Authorization": f"Bearer {api_key}"},
        )

    check()


def test_every_operation_is_covered(api_schema):
    served = {
        (op.method.upper(), op.path) for op in (r.ok() for r in api_schema.get_all_operations())
    }
    assert served == set(OPERATIONS) and len(OPERATIONS) >= 8
