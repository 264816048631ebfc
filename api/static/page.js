// The videos page: asks for the API key, lists the key's videos, starts new ones and follows them.
// Plain JavaScript, no build step. It only talks to this server's own Videos API (/v1/videos) with
// the key as a Bearer token, so it sees exactly what that key sees. Text from the API is only ever
// put into the page as text (textContent), never as HTML.
"use strict";

(() => {
  const KEY_STORAGE = "sora-temporal.api-key";
  const PAGE_SIZE = 20;
  const POLL_MS = 1000; // while any video runs
  const LIST_REFRESH_RUNNING_MS = 5000; // new videos made elsewhere (an SDK, another tab)
  const LIST_REFRESH_IDLE_MS = 10000;
  const MAX_PARALLEL_READS = 8;
  const FIELDS = ["prompt", "model", "size", "seconds", "input_reference"];
  const SNAPSHOT = /^(sora-2(?:-pro)?)-\d{4}-\d{2}-\d{2}$/;

  const config = JSON.parse(document.getElementById("page-config").textContent);
  const byId = (id) => document.getElementById(id);
  const ui = {
    keyPanel: byId("key-panel"),
    keyForm: byId("key-form"),
    keyInput: byId("api-key"),
    keyError: byId("api-key-error"),
    keySubmit: byId("key-submit"),
    app: byId("app"),
    session: byId("session"),
    keyLabel: byId("key-label"),
    forget: byId("forget-key"),
    form: byId("create-form"),
    submit: byId("create-submit"),
    formError: byId("form-error"),
    model: byId("model"),
    size: byId("size"),
    sizeOptions: byId("size-options"),
    sizeHint: byId("size-hint"),
    reference: byId("input_reference"),
    jobs: byId("jobs"),
    empty: byId("empty"),
    more: byId("more"),
    refresh: byId("refresh"),
    listError: byId("list-error"),
    announcer: byId("announcer"),
    template: byId("job-template"),
  };

  const state = {
    key: null,
    generation: 0, // bumped whenever the key changes: late answers for an old key are dropped
    entries: new Map(), // video id -> {data, node, parts, video, thumbnail, cancelling}
    order: [], // video ids as shown, newest first
    lastId: null,
    hasMore: false,
    timer: null,
    lastListAt: 0,
    ticking: false,
  };

  // --- talking to the API -----------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || (status ? `The server answered ${status}.` : "The server could not be reached."));
      this.status = status;
      this.param = error.param || null;
      this.code = error.code || null;
    }
  }

  class Stale extends Error {}

  async function request(path, options = {}) {
    const generation = state.generation;
    const headers = new Headers(options.headers || {});
    headers.set("Authorization", `Bearer ${state.key}`);
    let response;
    try {
      response = await fetch(path, { ...options, headers, cache: "no-store", credentials: "omit" });
    } catch (err) {
      if (generation !== state.generation) throw new Stale();
      throw new ApiError(0, null);
    }
    if (generation !== state.generation) throw new Stale();
    if (!response.ok) {
      let body = null;
      try {
        body = await response.json();
      } catch (err) {
        body = null;
      }
      throw new ApiError(response.status, body);
    }
    return response;
  }

  async function api(path, options) {
    const response = await request(path, options);
    return { body: await response.json(), response };
  }

  function newIdempotencyKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "page-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // --- what a video object means ------------------------------------------------------------------

  const RANK = { queued: 0, in_progress: 1, completed: 2, failed: 2 };
  const LABELS = {
    queued: "Queued",
    in_progress: "In progress",
    completed: "Completed",
    failed: "Failed",
    cancelled: "Cancelled",
    timed_out: "Timed out",
  };

  const finished = (video) => video.status === "completed" || video.status === "failed";

  function kind(video) {
    if (video.status === "failed" && video.error) {
      if (video.error.code === "cancelled") return "cancelled";
      if (video.error.code === "timed_out") return "timed_out";
    }
    return video.status in LABELS ? video.status : "queued";
  }

  function workflowId(videoId) {
    return videoId.startsWith(config.videoIdPrefix)
      ? config.workflowIdPrefix + videoId.slice(config.videoIdPrefix.length)
      : null;
  }

  function shortPrompt(prompt) {
    const text = (prompt || "").replace(/\s+/g, " ").trim();
    return text.length > 60 ? text.slice(0, 57) + "…" : text;
  }

  function cost(video) {
    const raw = video.estimated_cost_usd;
    if (raw === null || raw === undefined || raw === "") return null;
    const value = Number(raw);
    return Number.isFinite(value) ? value : null;
  }

  // A list answer comes from the catalogue alone, a single read also from the running workflow, so
  // a list can lag behind what a read already showed: never move a running video backwards.
  function merge(old, fresh) {
    if (!old || finished(fresh)) return fresh;
    if (finished(old)) return old;
    const merged = { ...fresh };
    if (RANK[old.status] > RANK[fresh.status]) merged.status = old.status;
    merged.progress = Math.max(old.progress || 0, fresh.progress || 0);
    return merged;
  }

  // --- cards ------------------------------------------------------------------------------------

  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  function buildCard(video) {
    const node = ui.template.content.firstElementChild.cloneNode(true);
    const q = (selector) => node.querySelector(selector);
    const parts = {
      media: q(".media"),
      placeholder: q(".placeholder"),
      placeholderText: q(".placeholder-text"),
      prompt: q(".prompt"),
      model: q(".model"),
      size: q(".size"),
      seconds: q(".seconds"),
      cost: q(".cost"),
      badge: q(".badge"),
      percent: q(".percent"),
      progress: q(".progress"),
      error: q(".error"),
      download: q(".download"),
      cancel: q(".cancel"),
      temporal: q(".temporal"),
      created: q(".created"),
      id: q(".id"),
    };
    node.dataset.videoId = video.id;
    const titleId = `prompt-${video.id}`;
    parts.prompt.id = titleId;
    node.querySelector(".card").setAttribute("aria-labelledby", titleId);
    parts.prompt.textContent = video.prompt || "(no prompt)";
    parts.prompt.title = video.prompt || "";
    parts.model.textContent = video.model || "";
    parts.size.textContent = video.size || "";
    parts.seconds.textContent = video.seconds ? `${video.seconds} s` : "";
    parts.progress.setAttribute("aria-label", `Progress of “${shortPrompt(video.prompt)}”`);
    parts.cancel.setAttribute("aria-label", `Cancel “${shortPrompt(video.prompt)}”`);
    parts.download.setAttribute("aria-label", `Download “${shortPrompt(video.prompt)}”`);
    const workflow = workflowId(video.id);
    if (workflow) {
      parts.temporal.href = config.workflowsUrl + encodeURIComponent(workflow);
      parts.temporal.title = `Workflow ${workflow} in the Temporal Web UI`;
    } else {
      parts.temporal.hidden = true;
    }
    if (video.created_at) {
      const created = new Date(video.created_at * 1000);
      parts.created.dateTime = created.toISOString();
      parts.created.textContent = dateFormat.format(created);
    }
    parts.id.textContent = video.id;
    const entry = { data: null, node, parts, video: null, thumbnail: null, cancelling: false };
    parts.cancel.addEventListener("click", () => cancel(entry));
    return entry;
  }

  function render(entry, video) {
    const before = entry.data;
    entry.data = video;
    const { node, parts } = entry;
    const what = kind(video);
    const progress = video.status === "completed" ? 100 : Math.max(0, Math.min(100, video.progress || 0));
    node.dataset.status = what;
    node.dataset.progress = String(progress);
    parts.badge.textContent = LABELS[what];
    parts.progress.value = progress;
    const running = !finished(video);
    parts.progress.hidden = !running;
    parts.percent.textContent = running ? `${progress}%` : "";
    if (running) {
      parts.placeholderText.textContent = video.status === "queued" ? "Queued" : "Rendering…";
    } else if (what !== "completed") {
      parts.placeholderText.textContent = what === "cancelled" ? "Cancelled" : "No video";
    }
    const price = cost(video);
    parts.cost.hidden = price === null;
    if (price !== null) {
      parts.cost.textContent = `≈ $${price.toFixed(2)}`;
      parts.cost.title = "Estimated cost";
    }
    const showError = video.status === "failed" && video.error && what !== "cancelled";
    parts.error.hidden = !showError;
    if (showError) {
      parts.error.textContent = video.error.message || video.error.code || "The job failed.";
      parts.error.title = video.error.code ? `code: ${video.error.code}` : "";
    }
    if (what === "cancelled") {
      parts.error.hidden = false;
      parts.error.textContent = (video.error && video.error.message) || "Cancelled.";
      parts.error.classList.add("quiet");
    }
    parts.cancel.hidden = !running;
    parts.cancel.disabled = entry.cancelling;
    parts.cancel.textContent = entry.cancelling ? "Cancelling…" : "Cancel";
    const url = video.url || video.video_url;
    if (video.status === "completed" && url) {
      parts.download.hidden = false;
      parts.download.href = url;
      parts.download.setAttribute("download", `${video.id}.mp4`);
      showVideo(entry, url);
    } else {
      parts.download.hidden = true;
    }
    if (before && !finished(before) && finished(video)) {
      announce(`${LABELS[what]}: ${shortPrompt(video.prompt)}`);
    }
  }

  function showVideo(entry, url) {
    if (entry.video) return;
    const { parts, data } = entry;
    const video = document.createElement("video");
    video.controls = true;
    video.preload = "metadata";
    video.playsInline = true;
    video.className = "player";
    video.setAttribute("aria-label", `Video: ${shortPrompt(data.prompt)}`);
    video.addEventListener("error", () => {
      parts.placeholderText.textContent = "The video could not be played here; try Download.";
      parts.placeholder.hidden = false;
      video.hidden = true;
    });
    video.src = url;
    parts.placeholder.hidden = true;
    parts.media.append(video);
    entry.video = video;
    loadThumbnail(entry);
  }

  // The stored WebP thumbnail, fetched with the key (an <img> or a poster cannot send it).
  async function loadThumbnail(entry) {
    if (entry.thumbnail) return;
    entry.thumbnail = "loading";
    try {
      const path = `v1/videos/${encodeURIComponent(entry.data.id)}/content?variant=thumbnail`;
      const blob = await (await request(path)).blob();
      entry.thumbnail = URL.createObjectURL(blob);
      if (entry.video) entry.video.poster = entry.thumbnail;
    } catch (err) {
      entry.thumbnail = "none"; // no thumbnail stored: the video's first frame shows instead
    }
  }

  function forgetEntry(id) {
    const entry = state.entries.get(id);
    if (!entry) return;
    if (entry.thumbnail && entry.thumbnail.startsWith("blob:")) URL.revokeObjectURL(entry.thumbnail);
    if (entry.video) entry.video.removeAttribute("src");
    entry.node.remove();
    state.entries.delete(id);
    state.order = state.order.filter((known) => known !== id);
  }

  function upsert(video) {
    let entry = state.entries.get(video.id);
    if (!entry) {
      entry = buildCard(video);
      state.entries.set(video.id, entry);
    }
    render(entry, merge(entry.data, video));
    return entry;
  }

  // Put the nodes in state.order, moving only those out of place (moving a <video> pauses it).
  function placeNodes() {
    state.order.forEach((id, index) => {
      const node = state.entries.get(id).node;
      if (ui.jobs.children[index] !== node) ui.jobs.insertBefore(node, ui.jobs.children[index] || null);
    });
    ui.empty.hidden = state.order.length > 0;
    ui.more.hidden = !state.hasMore;
  }

  // --- reading -------------------------------------------------------------------------------------

  function showListError(err) {
    if (err instanceof Stale) return;
    ui.listError.textContent = `Could not refresh the list: ${err.message}`;
    ui.listError.hidden = false;
  }

  async function refreshFirstPage() {
    const { body } = await api(`v1/videos?limit=${PAGE_SIZE}`);
    state.lastListAt = Date.now();
    ui.listError.hidden = true;
    const page = body.data || [];
    const seen = new Set(page.map((video) => video.id));
    const oldest = page.length ? page[page.length - 1].created_at : null;
    // Gone from the newest page although newer than its oldest entry (or the page holds them all):
    // deleted elsewhere.
    for (const id of [...state.order]) {
      if (seen.has(id)) continue;
      const created = state.entries.get(id).data.created_at;
      if (!body.has_more || (oldest !== null && created > oldest)) forgetEntry(id);
    }
    page.forEach(upsert);
    const rest = state.order.filter((id) => !seen.has(id));
    state.order = [...page.map((video) => video.id), ...rest];
    if (!rest.length) {
      state.hasMore = Boolean(body.has_more);
      state.lastId = body.last_id;
    }
    placeNodes();
  }

  async function loadOlder() {
    ui.more.disabled = true;
    try {
      const after = state.order[state.order.length - 1];
      const { body } = await api(`v1/videos?limit=${PAGE_SIZE}&after=${encodeURIComponent(after)}`);
      for (const video of body.data || []) {
        upsert(video);
        if (!state.order.includes(video.id)) state.order.push(video.id);
      }
      state.hasMore = Boolean(body.has_more);
      placeNodes();
    } catch (err) {
      showListError(err);
    } finally {
      ui.more.disabled = false;
    }
  }

  async function refreshOne(id) {
    try {
      const { body } = await api(`v1/videos/${encodeURIComponent(id)}`);
      if (state.entries.has(id)) upsert(body);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        forgetEntry(id); // deleted elsewhere
        placeNodes();
        return;
      }
      throw err;
    }
  }

  function anyRunning() {
    for (const entry of state.entries.values()) if (!finished(entry.data)) return true;
    return false;
  }

  function schedule(delay) {
    clearTimeout(state.timer);
    state.timer = setTimeout(tick, delay);
  }

  async function tick() {
    if (!state.key || state.ticking) return;
    if (document.hidden) return; // resumed by visibilitychange
    state.ticking = true;
    const generation = state.generation;
    try {
      const running = [...state.entries.values()].filter((entry) => !finished(entry.data));
      const listEvery = running.length ? LIST_REFRESH_RUNNING_MS : LIST_REFRESH_IDLE_MS;
      if (Date.now() - state.lastListAt >= listEvery) await refreshFirstPage();
      const ids = running.map((entry) => entry.data.id);
      for (let start = 0; start < ids.length; start += MAX_PARALLEL_READS) {
        await Promise.all(ids.slice(start, start + MAX_PARALLEL_READS).map(refreshOne));
      }
    } catch (err) {
      if (handleAuthFailure(err)) return;
      showListError(err);
    } finally {
      state.ticking = false;
    }
    if (generation !== state.generation || !state.key) return;
    schedule(anyRunning() ? POLL_MS : LIST_REFRESH_IDLE_MS);
  }

  // --- steering --------------------------------------------------------------------------------------

  async function cancel(entry) {
    if (entry.cancelling) return;
    entry.cancelling = true;
    render(entry, entry.data);
    const id = entry.data.id;
    try {
      // DELETE on a video that has just finished would delete it: look once more first.
      const { body } = await api(`v1/videos/${encodeURIComponent(id)}`);
      upsert(body);
      if (finished(body)) {
        announce(`Already ${LABELS[kind(body)].toLowerCase()}: ${shortPrompt(body.prompt)}`);
        return;
      }
      await api(`v1/videos/${encodeURIComponent(id)}`, { method: "DELETE" });
      announce(`Cancelling: ${shortPrompt(body.prompt)}`);
      schedule(0);
    } catch (err) {
      if (handleAuthFailure(err) || err instanceof Stale) return;
      entry.parts.error.hidden = false;
      entry.parts.error.classList.remove("quiet");
      entry.parts.error.textContent = `Could not cancel: ${err.message}`;
      entry.cancelling = false;
      render(entry, entry.data);
      return;
    }
    // Stays "Cancelling…" until the job reports it stopped.
    entry.cancelling = !finished(entry.data);
    if (!entry.cancelling) render(entry, entry.data);
  }

  function fieldParts(name) {
    const input = byId(name);
    const error = byId(`${name}-error`);
    return input && error ? { input, error } : null;
  }

  function clearFieldError(name) {
    const parts = fieldParts(name);
    if (!parts) return;
    parts.input.removeAttribute("aria-invalid");
    parts.error.hidden = true;
    parts.error.textContent = "";
  }

  function clearErrors() {
    FIELDS.forEach(clearFieldError);
    ui.formError.hidden = true;
    ui.formError.textContent = "";
  }

  function showFieldError(name, message) {
    const parts = name && FIELDS.includes(name) ? fieldParts(name) : null;
    if (!parts) {
      ui.formError.textContent = message;
      ui.formError.hidden = false;
      ui.formError.focus();
      return;
    }
    parts.input.setAttribute("aria-invalid", "true");
    parts.error.textContent = message.charAt(0).toUpperCase() + message.slice(1);
    parts.error.hidden = false;
    parts.input.focus();
  }

  function megabytes(bytes) {
    return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  }

  async function startVideo(event) {
    event.preventDefault();
    clearErrors();
    const form = new FormData();
    form.append("prompt", byId("prompt").value);
    form.append("model", ui.model.value.trim());
    form.append("size", ui.size.value.trim());
    form.append("seconds", byId("seconds").value.trim());
    const file = ui.reference.files[0];
    if (file) {
      if (file.size > config.maxReferenceBytes) {
        showFieldError(
          "input_reference",
          `The image is ${megabytes(file.size)}; the limit is ${megabytes(config.maxReferenceBytes)}.`,
        );
        return;
      }
      form.append("input_reference", file, file.name);
    }
    ui.submit.disabled = true;
    ui.submit.textContent = "Starting…";
    try {
      const { body } = await api("v1/videos", {
        method: "POST",
        body: form,
        headers: { "Idempotency-Key": newIdempotencyKey() },
      });
      upsert(body);
      if (!state.order.includes(body.id)) state.order.unshift(body.id);
      placeNodes();
      ui.reference.value = "";
      announce(`Started: ${shortPrompt(body.prompt)}`);
      schedule(POLL_MS);
    } catch (err) {
      if (handleAuthFailure(err) || err instanceof Stale) return;
      if (err.status === 413) showFieldError("input_reference", err.message);
      else showFieldError(err.param, err.message);
    } finally {
      ui.submit.disabled = false;
      ui.submit.textContent = "Generate video";
    }
  }

  function updateSizeChoices() {
    const model = ui.model.value.trim();
    const match = SNAPSHOT.exec(model);
    const sizes = config.models[model] || (match && config.models[match[1]]) || [];
    ui.sizeOptions.replaceChildren(
      ...sizes.map((size) => {
        const option = document.createElement("option");
        option.value = size;
        return option;
      }),
    );
    ui.sizeHint.textContent = sizes.length
      ? `${model}: ${sizes.join(", ")}`
      : "Width x height in pixels, e.g. 1280x720.";
  }

  function announce(text) {
    ui.announcer.textContent = text;
  }

  // --- the key -------------------------------------------------------------------------------------

  function resetList() {
    for (const id of [...state.order]) forgetEntry(id);
    state.order = [];
    state.hasMore = false;
    state.lastListAt = 0;
    ui.listError.hidden = true;
  }

  function showKeyPanel(message) {
    clearTimeout(state.timer);
    state.key = null;
    state.generation += 1;
    resetList();
    ui.app.hidden = true;
    ui.session.hidden = true;
    ui.keyPanel.hidden = false;
    ui.keyError.textContent = message || "";
    ui.keyError.hidden = !message;
    if (message) ui.keyInput.setAttribute("aria-invalid", "true");
    else ui.keyInput.removeAttribute("aria-invalid");
    ui.keyInput.focus();
  }

  // A 401 after the key worked: it was revoked, or the server's keys changed.
  function handleAuthFailure(err) {
    if (!(err instanceof ApiError) || err.status !== 401) return false;
    sessionStorage.removeItem(KEY_STORAGE);
    showKeyPanel("This key is no longer accepted. Enter a valid key.");
    return true;
  }

  async function useKey(key, { remembered }) {
    state.key = key;
    state.generation += 1;
    resetList();
    ui.keySubmit.disabled = true;
    try {
      await refreshFirstPage();
    } catch (err) {
      if (err instanceof Stale) return;
      if (err instanceof ApiError && err.status === 401) {
        sessionStorage.removeItem(KEY_STORAGE);
        showKeyPanel(remembered ? "" : "This key was not accepted. Check it and try again.");
        return;
      }
      showListError(err); // the key may be fine; the list failed for another reason
    } finally {
      ui.keySubmit.disabled = false;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    ui.keyInput.value = "";
    ui.keyPanel.hidden = true;
    ui.app.hidden = false;
    ui.session.hidden = false;
    ui.keyLabel.textContent = key.length > 8 ? `Key …${key.slice(-4)}` : "Key entered";
    if (!remembered) byId("prompt").focus();
    schedule(anyRunning() ? POLL_MS : LIST_REFRESH_IDLE_MS);
  }

  ui.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = ui.keyInput.value.trim();
    if (!key) {
      showKeyPanel("Enter your API key.");
      return;
    }
    useKey(key, { remembered: false });
  });
  ui.keyInput.addEventListener("input", () => {
    ui.keyError.hidden = true;
    ui.keyInput.removeAttribute("aria-invalid");
  });
  ui.forget.addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    showKeyPanel("");
  });
  ui.form.addEventListener("submit", startVideo);
  for (const name of FIELDS) byId(name).addEventListener("input", () => clearFieldError(name));
  ui.model.addEventListener("input", updateSizeChoices);
  ui.more.addEventListener("click", loadOlder);
  ui.refresh.addEventListener("click", () => {
    state.lastListAt = 0;
    schedule(0);
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.key) schedule(0);
  });

  updateSizeChoices();
  const remembered = sessionStorage.getItem(KEY_STORAGE);
  if (remembered) useKey(remembered, { remembered: true });
  else showKeyPanel("");
})();
