// Service worker for the verifier page: keeps the page, its assets and the trust policy cached so that an
// offline QR link (#b=...) verifies with the log unreachable. Network first, the cache when the network fails.
"use strict";
const CACHE = "tlog-verify-v1";
const CACHED = ["/verify", "/verify/verify.js", "/verify/qrlink.js", "/verify/verify.css", "/verify/i18n.js",
  "/api/v1/policy"];

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
