"""A backend for Switchboard in Python: serves an upstream walker and a namespace, and publishes
to browsers.

Run it with ./run.sh (a venv with Flask and requests), then start Switchboard with
switchboard.toml from this folder. Switchboard POSTs each `create_todo` walker call here, signed
with the shared secret; this app checks the signature, answers the walker's reports, and asks
Switchboard to notify the caller's other tabs. It also decides who may join the `support`
namespace and answers the messages sent there.
"""

import hashlib
import hmac
import json
import os
import time

import requests
from flask import Flask, abort, jsonify, request

SECRET = os.environ.get("UPSTREAM_SECRET", "change me: shared with switchboard").encode()
SWITCHBOARD = os.environ.get("SWITCHBOARD_URL", "http://127.0.0.1:8000")
API_KEY = os.environ.get("BACKEND_API_KEY", "change me: an api key of 16+ chars")
MAX_AGE_S = 300  # refuse requests signed longer ago than this (replays)

app = Flask(__name__)


def verified_body():
    """The request's JSON body, if Switchboard signed it; 401 otherwise."""
    header = request.headers.get("X-Switchboard-Signature", "")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    body = request.get_data()
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        abort(401)
    expected = hmac.new(SECRET, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts.get("v1", "")) or abs(time.time() - t) > MAX_AGE_S:
        abort(401)
    return json.loads(body)


@app.post("/walkers/create_todo")
def create_todo():
    call = verified_body()
    title = str(call["context"].get("title", "")).strip()
    if not title:
        return jsonify(reports=[{"error": "a todo needs a title"}])
    todo = {"title": title, "by": call["caller"]["username"]}
    notify = []
    if call["caller"]["user_id"]:
        # Every tab of this user hears about it, in its own dialect.
        notify.append({"target": {"users": [call["caller"]["user_id"]]},
                       "event": "todo_created", "data": todo})
    return jsonify(reports=[todo], notify=notify)


@app.post("/ws/support")
def support():
    """The `support` namespace: admits logged-in users only, and answers each message."""
    call = verified_body()
    caller = call["caller"]
    if call["event"] == "connect":
        if not caller["user_id"]:
            return jsonify(allow=False, reason="log in to reach support")
        return jsonify(allow=True)
    question = str(call["data"].get("text", ""))
    # The asker gets the answer; every agent in the namespace sees the question.
    return jsonify(reply={"type": "answer", "text": f"we got your question: {question}"},
                   notify=[{"target": {"namespace": "support"}, "event": "question",
                            "data": {"asker": caller["username"], "text": question}}])


@app.post("/announce")
def announce():
    """Not called by Switchboard: your own code publishing to browsers, in five lines."""
    text = request.get_json(force=True).get("text", "")
    answer = requests.post(f"{SWITCHBOARD}/api/publish",
                           headers={"Authorization": f"Bearer {API_KEY}"},
                           json={"target": {"all": True}, "event": "announcement",
                                 "data": {"text": text}}, timeout=5)
    return jsonify(answer.json()), answer.status_code


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "9000")))
