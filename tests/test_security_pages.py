"""The HTML pages of a restricted service (the viewer, `f=html`) ask a person to sign in instead of
answering JSON, and show nothing of the service until then."""

from __future__ import annotations

import pytest

from ogc_gateway.app import create_app
from secure import PASSWORDS, make_secure_config


@pytest.fixture(scope="module")
def client(data_dir, tmp_path_factory):
    config, _ = make_secure_config(data_dir, tmp_path_factory.mktemp("pages"))
    return create_app(config).test_client()


def token(client, user="alice"):
    return client.post("/arcgis/tokens/generateToken",
                       data={"username": user, "password": PASSWORDS[user], "client": "requestip", "f": "json"}
                       ).get_json()["token"]


@pytest.mark.parametrize("path", ["/arcgis/rest/services/mosaic/ImageServer/viewer",
                                  "/arcgis/rest/services/mosaic/ImageServer?f=html",
                                  "/arcgis/rest/services/mosaic/ImageServer/exportImage?f=html"])
def test_a_restricted_page_asks_for_a_sign_in_and_shows_nothing_of_the_service(client, path):
    resp = client.get(path)
    assert resp.status_code == 401 and resp.content_type.startswith("text/html")
    page = resp.get_data(as_text=True)
    assert 'id="sign-in"' in page and "Token Required" in page
    assert "Blue" not in page and "32633" not in page                # no band names, no CRS
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    signed = client.get(path + ("&" if "?" in path else "?") + f"token={token(client)}")
    assert signed.status_code == 200 and "mosaic" in signed.get_data(as_text=True)


def test_the_viewer_of_a_restricted_service_refuses_a_wrong_role_and_json_stays_json(client):
    wrong = client.get(f"/arcgis/rest/services/mosaic/ImageServer/viewer?token={token(client, 'bob')}")
    assert wrong.get_json()["error"]["code"] == 403
    assert client.get("/arcgis/rest/services/mosaic/ImageServer?f=json").get_json()["error"]["code"] == 499
    assert client.get("/arcgis/rest/services/dem/ImageServer/viewer").status_code == 200          # public
