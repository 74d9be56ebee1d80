"""Client side of the dssm Elasticsearch plugin (es-plugin/): model upload and the hybrid endpoint.

The plugin embeds the query in Java and fuses BM25 and kNN in the cluster, one round trip instead of
the client-side hybrid's two. REST formats (es-plugin/README.md):

- `PUT /_dssm/model/{name}` body `{"config": <config.json>, "weights": {"<manifest name>": "<base64>"}}`
- `GET|DELETE /_dssm/model/{name}`, `GET /_dssm/model` (all models)
- `POST /{index}/_dssm/search` body `{"query", "size", "from", "model", "fusion", "alpha", "norm",
  "rank_constant", "rank_window_size", "num_candidates", "filter", "explain", ...}`
"""
from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from dssm.export import read_config
from indexer.fusion import Contribution, Explanation, Fused
from indexer.hits import Hits

MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
JSON_HEADERS = {"accept": "application/json", "content-type": "application/json"}


def check_model_name(name: str) -> None:
    if not MODEL_NAME.fullmatch(name):
        raise ValueError(f"model name {name!r} must be 1-100 lowercase letters, digits, '.', '_' or '-', "
                         f"starting with a letter or digit")


def model_upload_body(model_dir: str | Path) -> dict:
    """The PUT body for an exported model directory: config.json and every weight file, base64."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    weights = {}
    for entry in config["weights"]:
        path = model_dir / entry["file"]
        if not path.is_file():
            raise ValueError(f"{path} is missing; re-export the model")
        weights[entry["name"]] = base64.b64encode(path.read_bytes()).decode("ascii")
    return {"config": config, "weights": weights}


def request(client: Elasticsearch, method: str, path: str, body: dict | None = None) -> dict:
    response = client.perform_request(method, path, headers=JSON_HEADERS, body=body)
    return dict(response.body)


def upload_model(client: Elasticsearch, name: str, model_dir: str | Path) -> dict:
    """Upload a model directory as `name`; returns the registry's answer (name, fingerprint, dims, ...)."""
    check_model_name(name)
    return request(client.options(request_timeout=300), "PUT", f"/_dssm/model/{name}",
                   model_upload_body(model_dir))


def get_model(client: Elasticsearch, name: str) -> dict:
    check_model_name(name)
    return request(client, "GET", f"/_dssm/model/{name}")


def list_models(client: Elasticsearch) -> list[dict]:
    """Every stored model's metadata, sorted by name."""
    return request(client, "GET", "/_dssm/model")["models"]


def delete_model(client: Elasticsearch, name: str) -> dict:
    check_model_name(name)
    return request(client, "DELETE", f"/_dssm/model/{name}")


def search(client: Elasticsearch, index: str, query: str, *, size: int = 10, from_: int = 0,
           model: str | None = None, fusion: str = "linear", **options: Any) -> dict:
    """Call `POST /{index}/_dssm/search`; `options` are the other body fields (alpha, norm, filter, ...).

    Returns the response body: `{"took", "model", "fusion", "hits": {"total", "max_score", "hits"}}`.
    """
    body: dict = {"query": query, "size": size, "from": from_, "fusion": fusion}
    if model is not None:
        body["model"] = model
    body.update({key: value for key, value in options.items() if value is not None})
    return request(client, "POST", f"/{index}/_dssm/search", body)


def response_hits(response: dict) -> Hits:
    """The fused hits of an endpoint response as `Hits` (ids and fused scores)."""
    hits = response["hits"]["hits"]
    return Hits([hit["_id"] for hit in hits], [hit["_score"] for hit in hits])


def contribution(part: dict | None) -> Contribution | None:
    if part is None:
        return None
    return Contribution(part["score"], part["rank"], part["normalised"], part["weight"], part["part"])


def fused_from_response(response: dict) -> Fused:
    """The endpoint's answer as `indexer.fusion.Fused` (explanations need `"explain": true`), so the
    CLI prints plugin hits exactly like client-side ones."""
    hits = response["hits"]["hits"]
    explanations = []
    for hit in hits:
        explained = hit.get("_explanation") or {}
        explanations.append(Explanation(hit["_id"], hit["_score"], explained.get("method", response["fusion"]["method"]),
                                        contribution(explained.get("lexical")), contribution(explained.get("semantic"))))
    return Fused(response_hits(response), tuple(explanations))


def titles(response: dict) -> dict[str, str]:
    """`{id: title}` from the hits' `_source` (empty where a document has no title)."""
    return {hit["_id"]: str((hit.get("_source") or {}).get("title") or "") for hit in response["hits"]["hits"]}
