// Service worker for the verifier page: keeps the page and its assets cached so that an offline QR link (#b=...)
// verifies with the log unreachable. The trust policy is built into the page itself, so it is cached with it.
// Network first, the cache when the network fails. Its query names the page and the asset folder it caches, so
// one script serves the log's /verify and a static copy hosted elsewhere (logserver/verifierpage.py).
"use strict";
const CACHE = "tlog-verify-v2";
const PARAMS = new URL(self.location.href).searchParams;
const PAGE = new URL(PARAMS.get("page") || "/verify", self.location.href).pathname;
const ASSETS = new URL(PARAMS.get("assets") || "/verify/", self.location.href).pathname;
const CACHED = [PAGE, ...["verify.js", "qrlink.js", "statusproof.js", "verify.css", "i18n.js", "mldsa44.js"].map((name) => ASSETS + name)];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(CACHED)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !CACHED.includes(url.pathname)) return;
  event.respondWith(fetch(event.request).then((response) => {
    if (response.ok) {
      const copy = response.clone();
      caches.open(CACHE).then((cache) => cache.put(url.pathname, copy));
    }
    return response;
  }).catch(() => caches.match(url.pathname).then((hit) => hit || Response.error())));
});
