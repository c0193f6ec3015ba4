"""Face objects (the OGC layer, the WCS coverage) are cached on the face side, keyed by service and
catalog generation; the engine's ImageService memo holds engine results only (issue 20)."""

from __future__ import annotations

import gc
import threading

from ogc_gateway.engine.service import open_services
from ogc_gateway.facecache import face_cached
from ogc_gateway.ogc.coverage import coverage_of
from ogc_gateway.ogc.layers import layer_of


def test_a_face_object_is_built_once_per_service_and_generation(config):
    service = open_services(config)["dem"]
    layer, coverage = layer_of(service), coverage_of(service)
    assert layer_of(service) is layer and coverage_of(service) is coverage
    assert layer.service is service and coverage.service is service
    assert not any(isinstance(v, type(layer)) or isinstance(v, type(coverage)) for v in service._cache.values())
    again = service.reopened()                                # what gateway.py does on a catalog change
    assert layer_of(again) is not layer and layer_of(again).service is again


def test_a_new_catalog_generation_computes_again():
    class Service:
        generation = 1

    service, calls = Service(), []
    assert face_cached(service, "k", lambda: calls.append(1) or len(calls)) == 1
    assert face_cached(service, "k", lambda: calls.append(1) or len(calls)) == 1
    service.generation = 2
    assert face_cached(service, "k", lambda: calls.append(1) or len(calls)) == 2
    assert face_cached(service, "other", lambda: face_cached(service, "k", lambda: 99)) == 2   # nested asks


def test_the_cache_lets_go_of_a_service_no_longer_used():
    import weakref

    class Service:
        generation = 0

    service = Service()
    face_cached(service, "k", lambda: object())
    gone = weakref.ref(service)
    del service
    gc.collect()
    assert gone() is None


def test_threads_asking_at_once_compute_once():
    class Service:
        generation = 0

    service, calls, barrier = Service(), [], threading.Barrier(8)

    def ask():
        barrier.wait()
        face_cached(service, "k", lambda: calls.append(1))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
