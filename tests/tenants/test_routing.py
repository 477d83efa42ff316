from tests.helpers import HOSPITAL_A, HOSPITAL_B


def test_routing_platform_host_lists_hospitals(platform_client):
    response = platform_client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert HOSPITAL_A["name"] in body and HOSPITAL_B["name"] in body


def test_routing_hospital_host_serves_its_own_schema(client_a, client_b, hospital_a, in_hospital):
    from registration.models import Department

    with in_hospital(hospital_a):
        Department.objects.create(code="only-in-a", name="甲院特色门诊")
    a = client_a.get("/").content.decode()
    b = client_b.get("/").content.decode()
    assert HOSPITAL_A["name"] in a and "甲院特色门诊" in a
    assert HOSPITAL_B["name"] in b and "甲院特色门诊" not in b


def test_routing_unknown_host_is_404(db):
    from tests.helpers import host_client

    assert host_client("nobody.localhost").get("/").status_code == 404


def test_routing_inactive_hospital_is_404(client_a, hospital_a):
    hospital_a.is_active = False
    hospital_a.save(update_fields=["is_active"])
    assert client_a.get("/").status_code == 404


def test_routing_own_invalidation_does_not_empty_the_host_cache_twice(db):
    """A process that invalidated its host cache keeps what it cached afterwards: only another
    process's change (a newer generation in Redis) empties it again."""
    from portal.middleware import domain_cache

    hospital = object()
    domain_cache.invalidate()
    domain_cache.put("example.localhost", hospital)
    domain_cache._checked_at = 0.0  # the next lookup reads the generation from Redis
    assert domain_cache.get("example.localhost") is hospital

    domain_cache._client().incr("portal:tenants:domain-generation")  # another process's change
    domain_cache._checked_at = 0.0
    assert domain_cache.get("example.localhost") is None
