// superres web page: choose an image and a model, upscale through the API, compare, download.
// Plain JavaScript, no dependencies; everything it loads comes from this server.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const el = {
    form: $("form"), drop: $("drop"), file: $("file"), fileInfo: $("file-info"), thumb: $("thumb"),
    fileName: $("file-name"), fileMeta: $("file-meta"), limitHint: $("limit-hint"),
    model: $("model"), scale: $("scale"), format: $("format"), go: $("go"), modelInfo: $("model-info"),
    width: $("width"), height: $("height"), fit: $("fit"), ensemble: $("ensemble"),
    strength: $("strength"), strengthField: $("strength-field"), strengthValue: $("strength-value"),
    strengthPartner: $("strength-partner"),
    progress: $("progress"), statusText: $("status-text"), error: $("error"),
    result: $("result"), viewport: $("viewport"), stage: $("stage"), before: $("before"), after: $("after"),
    divider: $("divider"), beforeTag: $("before-tag"), afterTag: $("after-tag"),
    download: $("download"), resultInfo: $("result-info"),
  };

  const state = {
    catalog: null,      // GET /v1/models
    file: null,         // the chosen File
    size: null,         // {width, height} when the browser can decode the file, else null
    previewUrl: null,   // object URL of the chosen file
    urls: [],           // object URLs of the current result, revoked when replaced
    split: 50,          // percent of the stage width showing "before"
    zoom: "fit",
    busy: false,
    lastRequest: null,  // what made the result shown: {scale} or {width, height, fit}, ensemble, strength
  };

  // ------------------------------------------------------------------ formatting

  function formatBytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(n < 10240 ? 1 : 0) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function formatCount(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + " M";
    if (n >= 1e3) return (n / 1e3).toFixed(n >= 1e4 ? 0 : 1) + " K";
    return String(n);
  }

  function formatQuality(quality) {
    // {"Set5": {"psnr": 37.1, "ssim": 0.95}} -> "Set5 37.10 dB / 0.9500"
    return Object.entries(quality).map(([set, m]) => {
      const parts = [];
      if (typeof m.psnr === "number") parts.push(m.psnr.toFixed(2) + " dB");
      if (typeof m.ssim === "number") parts.push(m.ssim.toFixed(4));
      return set + " " + parts.join(" / ");
    }).join(" · ");
  }

  // ------------------------------------------------------------------ status and errors

  function setStatus(text, progress) {
    // progress: null hides the bar, undefined makes it indeterminate, a number 0-100 fills it.
    el.statusText.textContent = text || "";
    if (progress === null) {
      el.progress.hidden = true;
    } else {
      el.progress.hidden = false;
      if (progress === undefined) el.progress.removeAttribute("value");
      else el.progress.value = progress;
    }
  }

  function showError(message) {
    el.error.textContent = message;
    el.error.hidden = !message;
  }

  // ------------------------------------------------------------------ models

  function offersOf(name) {
    const model = state.catalog.models.find((m) => m.name === name);
    return model ? model.scales : [];
  }

  function offerFor(name, scale) {
    return offersOf(name).find((o) => o.scale === scale) || null;
  }

  // The model scale the server runs for a factor (superres.inference.sizing.choose_model_scale):
  // the factor's own, else the next above (its result resized down), else the largest.
  function modelScaleFor(name, factor) {
    const scales = offersOf(name).map((o) => o.scale).sort((a, b) => a - b);
    return scales.find((s) => s >= factor) || scales[scales.length - 1];
  }

  // Factors no model is trained for, offered beside the models' own.
  const EXTRA_SCALES = [1.5, 2.5];

  function modelLabel(model, scale) {
    const offer = model.scales.find((o) => o.scale === scale);
    let label = model.name;
    if (!model.learned) label += " (interpolation)";
    if (offer && offer.quality && offer.quality.Set5 && typeof offer.quality.Set5.psnr === "number") {
      label += " · Set5 " + offer.quality.Set5.psnr.toFixed(2) + " dB";
    }
    return label;
  }

  function fillModels() {
    const { models, default: preferred } = state.catalog;
    el.model.replaceChildren(...models.map((m) => new Option(m.name, m.name)));
    el.model.value = preferred.model;
    fillScales(preferred.scale);
    el.model.disabled = false;
    el.scale.disabled = false;
    const limits = state.catalog.limits;
    el.limitHint.textContent = " · up to " + formatBytes(limits.max_upload_bytes) +
      ", " + (limits.max_input_pixels / 1e6).toFixed(1) + " megapixels";
  }

  function fillScales(wanted) {
    const offers = offersOf(el.model.value);
    const scales = [...new Set([...offers.map((o) => o.scale), ...EXTRA_SCALES])].sort((a, b) => a - b);
    el.scale.replaceChildren(...scales.map((s) => new Option("×" + s, String(s))));
    el.scale.value = String(scales.includes(wanted) ? wanted : (scales.includes(4) ? 4 : scales[0]));
    relabelModels();
    describeModel();
  }

  function relabelModels() {
    const scale = modelScaleFor(el.model.value, Number(el.scale.value));
    for (const option of el.model.options) {
      const model = state.catalog.models.find((m) => m.name === option.value);
      option.textContent = modelLabel(model, scale);
    }
  }

  function describeModel() {
    const name = el.model.value;
    const scale = modelScaleFor(name, Number(el.scale.value));
    const model = state.catalog.models.find((m) => m.name === name);
    const offer = offerFor(name, scale);
    el.modelInfo.replaceChildren();
    // The strength slider, for a perceptual model whose fidelity partner the server offers.
    el.strengthField.hidden = !(model && model.fidelity);
    el.strengthPartner.textContent = model && model.fidelity ? "(" + model.fidelity + ")" : "";
    if (!model || !offer) return;
    const strong = document.createElement("strong");
    strong.textContent = name + " ×" + scale;
    el.modelInfo.append(strong, " · " + model.paper + " · ");
    if (!model.learned) {
      el.modelInfo.append("no learned parameters: the baseline every model is compared with.");
    } else {
      el.modelInfo.append(formatCount(offer.parameters) + " parameters · ");
      el.modelInfo.append(model.trained_for === "auto"
        ? "for any photo: the model is chosen per image from its JPEG quality, noise and blur · "
        : model.trained_for === "real"
        ? "for real photos (JPEG, noise, blur) · "
        : "for clean downscales (sharp sources, high-quality JPEG) · ");
      if (offer.quality) {
        const q = document.createElement("span");
        q.className = "quality";
        q.textContent = "measured PSNR / SSIM (Y): " + formatQuality(offer.quality);
        el.modelInfo.append(q);
      } else {
        el.modelInfo.append("quality not measured for these weights.");
      }
    }
    describeFile();
  }

  async function loadModels() {
    setStatus("Loading models…", undefined);
    try {
      const response = await fetch("/v1/models");
      if (!response.ok) throw new Error(await errorText(response));
      state.catalog = await response.json();
      fillModels();
      setStatus("", null);
    } catch (err) {
      setStatus("", null);
      showError("Could not load the list of models: " + err.message);
    }
    updateButton();
  }

  // ------------------------------------------------------------------ the chosen file

  // What the user asked for: a scale, or a width and/or height (then the scale is not sent).
  function request() {
    const side = (input) => (input.value.trim() === "" ? null : Math.floor(Number(input.value)));
    const width = side(el.width), height = side(el.height);
    const req = { ensemble: el.ensemble.checked, fit: el.fit.value };
    if (!el.strengthField.hidden) req.strength = Number(el.strength.value);
    if (width !== null || height !== null) return { ...req, width, height };
    return { ...req, scale: Number(el.scale.value) };
  }

  // The result's label: ×1.5, 1920×1080, w2000 (as in file names), "+" for the self-ensemble.
  function sizeLabel(req, separator) {
    let label;
    if (req.scale !== undefined) label = "×" + req.scale;
    else if (req.width !== null && req.height !== null) label = req.width + separator + req.height;
    else label = req.width !== null ? "w" + req.width : "h" + req.height;
    return label + (req.ensemble ? "+" : "") + (req.strength !== undefined ? " @" + req.strength.toFixed(2) : "");
  }

  // The result's size, as the server computes it (superres.inference.sizing.OutputSize.plan).
  function outputSize() {
    if (!state.size) return null;
    const { width: w, height: h } = state.size;
    const round = (x) => Math.max(1, Math.floor(x + 0.5));
    const req = request();
    if (req.scale !== undefined) return { width: round(w * req.scale), height: round(h * req.scale) };
    if (req.height === null) return { width: req.width, height: round(h * req.width / w) };
    if (req.width === null) return { width: round(w * req.height / h), height: req.height };
    if (req.fit === "contain") {
      const f = Math.min(req.width / w, req.height / h);
      return { width: Math.min(req.width, round(w * f)), height: Math.min(req.height, round(h * f)) };
    }
    return { width: req.width, height: req.height };
  }

  function describeFile() {
    if (!state.file) return;
    let text = formatBytes(state.file.size);
    if (state.size) {
      const out = outputSize();
      text += " · " + state.size.width + "×" + state.size.height;
      if (out) text += " → " + out.width + "×" + out.height;
    }
    el.fileMeta.textContent = text;
  }

  function checkLimits() {
    // The server checks all of this too; checking here saves an upload that would be refused.
    if (!state.catalog || !state.file) return "";
    const limits = state.catalog.limits;
    if (state.file.size > limits.max_upload_bytes) {
      return "This file is " + formatBytes(state.file.size) + "; the server accepts up to " +
        formatBytes(limits.max_upload_bytes) + ".";
    }
    if (state.size) {
      const inPixels = state.size.width * state.size.height;
      if (inPixels > limits.max_input_pixels) {
        return "This image has " + (inPixels / 1e6).toFixed(1) + " megapixels; the server accepts up to " +
          (limits.max_input_pixels / 1e6).toFixed(1) + ".";
      }
      const out = outputSize();
      if (out.width * out.height > limits.max_output_pixels) {
        return "At " + sizeLabel(request(), "×") + " the result would be " + out.width + "×" + out.height +
          ", over the server's limit of " + (limits.max_output_pixels / 1e6).toFixed(1) + " megapixels. Choose a smaller scale.";
      }
    }
    return "";
  }

  function updateButton() {
    el.go.disabled = state.busy || !state.catalog || !state.file;
  }

  function chooseFile(file) {
    if (!file) return;
    showError("");
    if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
    state.file = file;
    state.size = null;
    state.previewUrl = URL.createObjectURL(file);
    el.fileName.textContent = file.name || "pasted image";
    el.fileInfo.hidden = false;
    el.drop.classList.add("has-file");
    el.thumb.hidden = false;
    el.thumb.onload = () => {
      state.size = { width: el.thumb.naturalWidth, height: el.thumb.naturalHeight };
      describeFile();
      showError(checkLimits());
    };
    el.thumb.onerror = () => {
      el.thumb.hidden = true; // TIFF, say: the browser cannot show it, the server can still read it
      describeFile();
    };
    el.thumb.src = state.previewUrl;
    describeFile();
    showError(checkLimits());
    updateButton();
  }

  el.file.addEventListener("change", () => chooseFile(el.file.files[0]));

  // Dropping outside the zone must not navigate away from the page.
  for (const type of ["dragover", "drop"]) {
    document.addEventListener(type, (event) => event.preventDefault());
  }
  el.drop.addEventListener("dragenter", () => el.drop.classList.add("dragging"));
  el.drop.addEventListener("dragover", (event) => {
    event.dataTransfer.dropEffect = "copy";
    el.drop.classList.add("dragging");
  });
  el.drop.addEventListener("dragleave", (event) => {
    if (!el.drop.contains(event.relatedTarget)) el.drop.classList.remove("dragging");
  });
  el.drop.addEventListener("drop", (event) => {
    el.drop.classList.remove("dragging");
    chooseFile(event.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (event) => {
    const file = [...(event.clipboardData ? event.clipboardData.files : [])].find((f) => f.type.startsWith("image/"));
    if (file) chooseFile(file);
  });

  el.model.addEventListener("change", () => fillScales(Number(el.scale.value)));
  el.strength.addEventListener("input", () => { el.strengthValue.textContent = Number(el.strength.value).toFixed(2); });
  el.scale.addEventListener("change", () => { relabelModels(); describeModel(); describeFile(); showError(checkLimits()); });
  for (const control of [el.width, el.height, el.fit]) {
    control.addEventListener("input", () => { describeFile(); showError(checkLimits()); });
  }

  // ------------------------------------------------------------------ talking to the API

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && body.error) return body.error;
    } catch (_) { /* not JSON */ }
    return "the server answered " + response.status + " " + response.statusText;
  }

  function blobErrorText(xhr) {
    return new Promise((resolve) => {
      const fallback = "the server answered " + xhr.status + " " + (xhr.statusText || "");
      if (!(xhr.response instanceof Blob)) return resolve(fallback);
      xhr.response.text().then((text) => {
        try { resolve(JSON.parse(text).error || fallback); } catch (_) { resolve(fallback); }
      }, () => resolve(fallback));
    });
  }

  // POST /v1/upscale with XHR, which (unlike fetch) reports upload progress.
  function upscale(model, req, format, onProgress) {
    return new Promise((resolve, reject) => {
      const body = new FormData();
      body.append("image", state.file, state.file.name || "image.png");
      body.append("model", model);
      if (req.scale !== undefined) body.append("scale", String(req.scale));
      if (req.width !== undefined && req.width !== null) body.append("width", String(req.width));
      if (req.height !== undefined && req.height !== null) body.append("height", String(req.height));
      if (req.scale === undefined) body.append("fit", req.fit);
      if (req.ensemble) body.append("ensemble", "true");
      if (req.strength !== undefined) body.append("strength", String(req.strength));
      body.append("format", format);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/v1/upscale");
      xhr.responseType = "blob";
      xhr.upload.onprogress = (event) => {
        if (onProgress && event.lengthComputable) onProgress("upload", event.loaded / event.total);
      };
      xhr.upload.onload = () => onProgress && onProgress("processing");
      xhr.onload = async () => {
        if (xhr.status === 200) {
          resolve({
            blob: xhr.response,
            seconds: Number(xhr.getResponseHeader("x-superres-seconds")),
            // model "auto": the model the server chose for this image, and why
            model: xhr.getResponseHeader("x-superres-model"),
            auto: xhr.getResponseHeader("x-superres-auto"),
          });
        } else {
          const error = new Error(await blobErrorText(xhr));
          error.status = xhr.status;
          reject(error);
        }
      };
      xhr.onerror = () => reject(new Error("the connection to the server failed"));
      xhr.send(body);
    });
  }

  function setBusy(busy) {
    state.busy = busy;
    for (const control of [el.model, el.scale, el.format, el.file, el.width, el.height, el.fit, el.ensemble, el.strength]) control.disabled = busy;
    el.form.setAttribute("aria-busy", String(busy));
    updateButton();
  }

  async function run(event) {
    event.preventDefault();
    if (state.busy || !state.file) return;
    const limitError = checkLimits();
    if (limitError) { showError(limitError); return; }
    const model = el.model.value;
    const req = request();
    const shown = sizeLabel(req, "×");  // ×1.5, 1920×1080, w2000; "+" for the self-ensemble
    const format = el.format.value;
    showError("");
    setBusy(true);
    const started = performance.now();
    let ticker = null;
    try {
      const result = await upscale(model, req, format, (phase, fraction) => {
        if (phase === "upload") {
          setStatus("Uploading… " + Math.round(fraction * 100) + "%", fraction * 100);
        } else {
          const t0 = performance.now();
          const tick = () => setStatus("Upscaling with " + model + " " + shown + "… " +
            Math.round((performance.now() - t0) / 1000) + " s", undefined);
          tick();
          ticker = setInterval(tick, 1000);
        }
      });
      clearInterval(ticker);
      let before = null;
      if (model !== "bicubic") {
        setStatus("Making the bicubic baseline for comparison…", undefined);
        try {
          before = { blob: (await upscale("bicubic", { ...req, ensemble: false, strength: undefined }, "png")).blob, label: "bicubic" };
        } catch (err) {
          before = null; // the comparison is a nicety: show the result alone
        }
      }
      state.lastRequest = req;
      await showResult(result, before, model, req, format);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const chosen = result.auto ? " (auto chose " + result.model + ": " + result.auto + ")" : "";
      setStatus("Done in " + seconds + " s" + chosen + ".", null);
    } catch (err) {
      clearInterval(ticker);
      setStatus("", null);
      showError(err.status === 503 ? "The server is busy: " + err.message : "Upscaling failed: " + err.message);
    } finally {
      setBusy(false);
    }
  }

  el.form.addEventListener("submit", run);

  // ------------------------------------------------------------------ the comparison

  function loadImage(img, url) {
    return new Promise((resolve, reject) => {
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("the browser cannot display this image"));
      img.src = url;
    });
  }

  async function showResult(result, before, model, req, format) {
    const shown = sizeLabel(req, "×");
    const plain = sizeLabel({ ...req, ensemble: false, strength: undefined }, "×");
    for (const url of state.urls) URL.revokeObjectURL(url);
    const afterUrl = URL.createObjectURL(result.blob);
    state.urls = [afterUrl];
    await loadImage(el.after, afterUrl);
    el.after.alt = "Upscaled with " + model + " " + shown;
    el.afterTag.textContent = model + " " + shown;

    // Before: the bicubic baseline, or for bicubic itself the original pixels enlarged
    // without smoothing (nearest neighbour), which is what bicubic is an improvement on.
    let compare = true;
    try {
      if (before) {
        const beforeUrl = URL.createObjectURL(before.blob);
        state.urls.push(beforeUrl);
        await loadImage(el.before, beforeUrl);
        el.beforeTag.textContent = "bicubic " + plain;
        el.before.alt = "Bicubic interpolation " + plain;
      } else if (model === "bicubic" && state.size) {
        await loadImage(el.before, state.previewUrl);
        el.beforeTag.textContent = "original (nearest)";
        el.before.alt = "The original image, enlarged without smoothing";
      } else {
        compare = false;
      }
    } catch (_) {
      compare = false;
    }
    if (!compare) {
      await loadImage(el.before, afterUrl); // keeps the stage's size; the "after" layer covers it
    }
    el.stage.classList.toggle("single", !compare);
    el.stage.dataset.compare = String(compare);

    const extension = format === "jpeg" ? "jpg" : format;
    const stem = (state.file.name || "image").replace(/\.[^.]+$/, "");
    el.download.href = afterUrl;
    // Named as the CLI and the API name it: photo_espcn_x1.5.png, photo_espcn_1920x1080.png.
    el.download.download = stem + "_" + model + "_" + plain.replace(/^×/, "x").replace("×", "x") + "." + extension;
    el.download.textContent = "Download " + format.toUpperCase() + " · " + formatBytes(result.blob.size);
    el.resultInfo.textContent = el.after.naturalWidth + "×" + el.after.naturalHeight + " pixels" +
      (result.seconds ? " · " + result.seconds.toFixed(2) + " s on the server" : "") +
      (compare ? " · left: " + el.beforeTag.textContent + ", right: " + el.afterTag.textContent : "");

    el.result.hidden = false;
    setSplit(50);
    applyZoom(state.zoom);
    el.result.scrollIntoView({ behavior: "smooth", block: "nearest" });
  }

  function setSplit(percent) {
    state.split = Math.max(0, Math.min(100, percent));
    const rounded = Math.round(state.split);
    el.stage.style.setProperty("--split", state.split + "%");
    el.divider.setAttribute("aria-valuenow", String(rounded));
    el.divider.setAttribute("aria-valuetext", rounded + "% " + (el.beforeTag.textContent || "before") +
      ", " + (100 - rounded) + "% " + (el.afterTag.textContent || "after"));
  }

  function splitFromPointer(event) {
    const rect = el.stage.getBoundingClientRect();
    setSplit(((event.clientX - rect.left) / rect.width) * 100);
  }

  el.stage.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    el.stage.setPointerCapture(event.pointerId);
    splitFromPointer(event);
    el.divider.focus({ preventScroll: true });
    event.preventDefault();
  });
  el.stage.addEventListener("pointermove", (event) => {
    if (el.stage.hasPointerCapture(event.pointerId)) splitFromPointer(event);
  });
  el.stage.addEventListener("pointerup", (event) => {
    if (el.stage.hasPointerCapture(event.pointerId)) el.stage.releasePointerCapture(event.pointerId);
  });

  el.divider.addEventListener("keydown", (event) => {
    const step = event.shiftKey ? 10 : 2;
    const moves = {
      ArrowLeft: state.split - step, ArrowDown: state.split - step,
      ArrowRight: state.split + step, ArrowUp: state.split + step,
      PageDown: state.split - 10, PageUp: state.split + 10, Home: 0, End: 100,
    };
    if (event.key in moves) {
      setSplit(moves[event.key]);
      event.preventDefault();
    }
  });

  function applyZoom(zoom) {
    state.zoom = zoom;
    for (const button of document.querySelectorAll(".zoom-button")) {
      button.setAttribute("aria-pressed", String(button.dataset.zoom === zoom));
    }
    const natural = el.after.naturalWidth;
    if (!natural) return;
    let width;
    if (zoom === "fit") {
      // As wide as the panel, and short enough to see whole.
      const maxHeight = window.innerHeight * 0.7;
      width = Math.min(el.viewport.clientWidth - 2, (natural * maxHeight) / el.after.naturalHeight);
    } else {
      // One image pixel per device pixel at 1:1, whatever the screen's pixel ratio.
      width = (natural * Number(zoom)) / (window.devicePixelRatio || 1);
    }
    el.stage.style.width = Math.max(1, Math.round(width)) + "px";
    // Enlarged pixels are shown as squares, not smoothed: the point is to see them.
    el.stage.classList.toggle("pixelated", width * (window.devicePixelRatio || 1) > natural * 1.01);
    el.stage.dataset.zoom = zoom;
  }

  for (const button of document.querySelectorAll(".zoom-button")) {
    button.addEventListener("click", () => applyZoom(button.dataset.zoom));
  }
  window.addEventListener("resize", () => { if (!el.result.hidden && state.zoom === "fit") applyZoom("fit"); });

  // ------------------------------------------------------------------ explaining a region

  // A rectangle on the result (in its pixels) goes to POST /v1/explain with the image, model and
  // scale that made the result; the answer's heatmap over the input is shown beside it.
  const ex = {
    mode: $("explain-mode"), go: $("explain-go"), selection: $("selection"),
    x: $("explain-x"), y: $("explain-y"), w: $("explain-w"), h: $("explain-h"),
    progress: $("explain-progress"), status: $("explain-status"), error: $("explain-error"),
    figure: $("explain-figure"), heatmap: $("explain-heatmap"), info: $("explain-info"),
  };
  const explainState = { selecting: false, drag: null, source: null, busy: false };

  function resultSize() {
    return { width: el.after.naturalWidth, height: el.after.naturalHeight };
  }

  function readBox() {
    const box = [ex.x, ex.y, ex.w, ex.h].map((input) => Number.parseInt(input.value, 10));
    if (box.some((v) => !Number.isFinite(v))) return null;
    const [x, y, w, h] = box;
    const size = resultSize();
    if (x < 0 || y < 0 || w < 2 || h < 2 || x + w > size.width || y + h > size.height) return null;
    return { x, y, w, h };
  }

  function drawSelection() {
    const box = readBox();
    const size = resultSize();
    ex.selection.hidden = !box;
    if (box) {
      ex.selection.style.left = (100 * box.x) / size.width + "%";
      ex.selection.style.top = (100 * box.y) / size.height + "%";
      ex.selection.style.width = (100 * box.w) / size.width + "%";
      ex.selection.style.height = (100 * box.h) / size.height + "%";
    }
    ex.go.disabled = explainState.busy || !box || !explainState.source;
  }

  function setBox(x, y, w, h) {
    [ex.x.value, ex.y.value, ex.w.value, ex.h.value] = [x, y, w, h].map(String);
    drawSelection();
  }

  function setSelecting(on) {
    explainState.selecting = on;
    ex.mode.setAttribute("aria-pressed", String(on));
    el.stage.classList.toggle("selecting", on);
  }

  function resultPixel(event) {
    const rect = el.stage.getBoundingClientRect();
    const size = resultSize();
    const fx = Math.max(0, Math.min(1, (event.clientX - rect.left) / rect.width));
    const fy = Math.max(0, Math.min(1, (event.clientY - rect.top) / rect.height));
    return { x: Math.round(fx * size.width), y: Math.round(fy * size.height) };
  }

  function dragTo(event) {
    const a = explainState.drag;
    const b = resultPixel(event);
    setBox(Math.min(a.x, b.x), Math.min(a.y, b.y), Math.abs(b.x - a.x), Math.abs(b.y - a.y));
  }

  // Capturing listeners run before the comparison slider's own: while selecting, a drag draws
  // the rectangle and the slider never sees it.
  el.stage.addEventListener("pointerdown", (event) => {
    if (!explainState.selecting || event.button !== 0) return;
    event.stopImmediatePropagation();
    event.preventDefault();
    el.stage.setPointerCapture(event.pointerId);
    explainState.drag = resultPixel(event);
    dragTo(event);
  }, true);
  el.stage.addEventListener("pointermove", (event) => {
    if (!explainState.drag) return;
    event.stopImmediatePropagation();
    dragTo(event);
  }, true);
  el.stage.addEventListener("pointerup", (event) => {
    if (!explainState.drag) return;
    event.stopImmediatePropagation();
    dragTo(event);
    explainState.drag = null;
    if (el.stage.hasPointerCapture(event.pointerId)) el.stage.releasePointerCapture(event.pointerId);
  }, true);

  ex.mode.addEventListener("click", () => setSelecting(!explainState.selecting));
  for (const input of [ex.x, ex.y, ex.w, ex.h]) input.addEventListener("input", drawSelection);

  // A new result: remember what made it (the controls may change before the next explanation).
  el.after.addEventListener("load", () => {
    ex.figure.hidden = true;
    ex.error.hidden = true;
    const req = state.lastRequest;
    if (!req || req.scale === undefined || !offerFor(el.model.value, req.scale)) {
      // A box of a resized result is not a box of any model's output: explain a model at its own scale.
      explainState.source = null;
      ex.status.textContent = "Explanations are of a model at its own scale (no size, no ×1.5): upscale that way to explain a region.";
      return;
    }
    explainState.source = { file: state.file, model: el.model.value, scale: req.scale };
    ex.status.textContent = "";
    const size = resultSize();
    const side = Math.max(2, Math.min(16 * explainState.source.scale, size.width, size.height));
    setBox(Math.floor((size.width - side) / 2), Math.floor((size.height - side) / 2), side, side);
  });

  async function explainBox() {
    const box = readBox();
    const source = explainState.source;
    if (!box || !source || explainState.busy) return;
    explainState.busy = true;
    ex.error.hidden = true;
    drawSelection();
    const body = new FormData();
    body.append("image", source.file, source.file.name || "image.png");
    body.append("model", source.model);
    body.append("scale", String(source.scale));
    body.append("box", [box.x, box.y, box.w, box.h].join(","));
    const t0 = performance.now();
    const tick = () => {
      ex.status.textContent = "Explaining with " + source.model + " ×" + source.scale + "… " +
        Math.round((performance.now() - t0) / 1000) + " s";
    };
    ex.progress.hidden = false;
    ex.progress.removeAttribute("value");
    tick();
    const ticker = setInterval(tick, 1000);
    try {
      const response = await fetch("/v1/explain", { method: "POST", body });
      if (!response.ok) throw new Error(await errorText(response));
      const result = await response.json();
      ex.heatmap.src = result.heatmap;
      ex.heatmap.alt = "Attribution of the result's box " + [box.x, box.y, box.w, box.h].join(",") +
        " over the input image, brighter where an input pixel mattered more";
      const ib = result.input_box;
      ex.info.textContent = "Diffusion Index " + result.diffusion_index.toFixed(2) + " (0-100, how widely the model draws on the input) · " +
        (100 * result.outside_share).toFixed(1) + "% of the attribution lies outside the box's own input area (" +
        ib.width + "×" + ib.height + " px at " + ib.x + "," + ib.y + ", outlined in cyan) · " +
        result.steps + " steps, " + result.seconds.toFixed(1) + " s on the server";
      ex.figure.hidden = false;
      ex.status.textContent = "Explained.";
    } catch (err) {
      ex.status.textContent = "";
      ex.error.textContent = "Explaining failed: " + err.message;
      ex.error.hidden = false;
    } finally {
      clearInterval(ticker);
      ex.progress.hidden = true;
      explainState.busy = false;
      drawSelection();
    }
  }

  ex.go.addEventListener("click", explainBox);

  loadModels();
})();
