// The lucid console: forms from /console/catalogue.json, everything else through the public
// Image API with the key kept in this tab's session storage. No framework, no build step.

const $ = (id) => document.getElementById(id);
const API = "/image/v1";
const TERMINAL = ["Completed", "Failed", "Cancelled"];

let catalogue = null;
let current = null; // { id, name, before (URL or null), timer }

// ---- the key --------------------------------------------------------------------------------

function key() {
  return sessionStorage.getItem("lucid-api-key");
}

function showKeyPanel(show) {
  $("key-panel").hidden = !show;
  $("workspace").hidden = show;
  $("change-key").hidden = show;
  $("key-state").textContent = show ? "" : "key " + key().slice(0, 10) + "…";
}

$("key-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  sessionStorage.setItem("lucid-api-key", $("api-key").value.trim());
  try {
    await api("GET", "/account/v1/credits/balance", null, true);
    showKeyPanel(false);
    refreshJobs();
  } catch (err) {
    sessionStorage.removeItem("lucid-api-key");
    alert("That key was refused: " + err.message);
  }
});

$("change-key").addEventListener("click", () => {
  sessionStorage.removeItem("lucid-api-key");
  $("api-key").value = "";
  showKeyPanel(true);
});

// ---- the API --------------------------------------------------------------------------------

/** Calls the API with the key; answers the JSON body (or null), throws the API's message. */
async function api(method, path, body, absolute) {
  const resp = await fetch(absolute ? path : API + path, {
    method,
    body,
    headers: { "X-API-Key": key() },
  });
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!resp.ok) {
    throw new Error((json && json.message) || `HTTP ${resp.status}`);
  }
  return json;
}

function notice(text, ok) {
  $("notice").textContent = text;
  $("notice").className = ok ? "ok" : "";
}

// ---- the form, from the catalogue -----------------------------------------------------------

function endpoint() {
  return catalogue.endpoints.find((e) => e.slug === $("endpoint").value);
}

function fillModels() {
  const ep = endpoint();
  $("model").replaceChildren(...ep.models.map((m) => new Option(m.name, m.name, false, m.name === ep.default_model)));
  describeModel();
  $("geometry").hidden = !ep.resizes;
  const formats = ep.png_only ? ["png"] : catalogue.output_formats;
  $("output_format").replaceChildren(...formats.map((f) => new Option(f, f, false, f === ep.default_format)));
}

function describeModel() {
  const m = endpoint().models.find((m) => m.name === $("model").value);
  $("model-does").textContent = m ? m.does : "";
}

function settingInput(s) {
  const label = document.createElement("label");
  label.textContent = s.name.replaceAll("_", " ");
  let input;
  if (s.kind === "bool") {
    input = document.createElement("select");
    input.append(new Option("default", ""), new Option("true", "true"), new Option("false", "false"));
  } else if (s.kind === "one_of") {
    input = document.createElement("select");
    input.append(new Option("default", ""), ...s.options.map((o) => new Option(o, o)));
  } else {
    input = document.createElement("input");
    if (s.kind === "text") {
      input.maxLength = s.max_chars;
    } else {
      input.type = "number";
      input.min = s.min;
      input.max = s.max;
      input.step = s.kind === "integer" ? "1" : "any";
      input.placeholder = `${s.min}–${s.max}`;
    }
  }
  input.dataset.setting = s.name;
  label.append(input);
  return label;
}

async function loadCatalogue() {
  catalogue = await (await fetch("/console/catalogue.json")).json();
  $("endpoint").replaceChildren(...catalogue.endpoints.map((e) => new Option(`${e.slug} (${e.category})`, e.slug)));
  $("settings").replaceChildren(...catalogue.settings.map(settingInput));
  const models = new Set(catalogue.endpoints.flatMap((e) => e.models.map((m) => m.name)));
  $("filter-model").append(...[...models].sort().map((m) => new Option(m, m)));
  fillModels();
}

$("endpoint").addEventListener("change", fillModels);
$("model").addEventListener("change", describeModel);

// ---- choosing images: click, drop, paste ----------------------------------------------------

let chosen = [];

function choose(files) {
  chosen = [...files].filter((f) => /^image\/(jpeg|png|tiff)$/.test(f.type) || /\.(jpe?g|png|tiff?)$/i.test(f.name));
  $("drop-text").textContent = chosen.length
    ? chosen.map((f) => f.name).join(", ")
    : "Drop images here, paste, or click to choose";
  $("submit").disabled = chosen.length === 0;
}

$("file").addEventListener("change", (e) => choose(e.target.files));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  choose(e.dataTransfer.files);
});
document.addEventListener("paste", (e) => {
  if (e.clipboardData && e.clipboardData.files.length) choose(e.clipboardData.files);
});

// ---- submitting -----------------------------------------------------------------------------

$("job-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const ep = endpoint();
  let last = null;
  for (const file of chosen) {
    const form = new FormData();
    form.append("image", file, file.name);
    form.append("model", $("model").value);
    form.append("output_format", $("output_format").value);
    if (ep.resizes) {
      for (const f of ["output_width", "output_height"]) {
        if ($(f).value) form.append(f, $(f).value);
      }
      if ($("crop_to_fill").checked) form.append("crop_to_fill", "true");
    }
    for (const input of document.querySelectorAll("[data-setting]")) {
      if (input.value !== "") form.append(input.dataset.setting, input.value);
    }
    try {
      const accepted = await api("POST", `/${ep.slug}/async`, form);
      notice(`Submitted ${file.name}`, true);
      last = { id: accepted.process_id, name: file.name, before: URL.createObjectURL(file) };
    } catch (err) {
      notice(`${file.name}: ${err.message}`);
    }
  }
  if (last) show(last);
  refreshJobs();
});

// ---- one job: progress, cancel, compare, download -------------------------------------------

function show(job) {
  if (current && current.timer) clearTimeout(current.timer);
  current = job;
  $("job").hidden = false;
  $("job-name").textContent = job.name;
  $("job-id").textContent = job.id;
  $("download").hidden = true;
  $("after").removeAttribute("src");
  // Until there is an output, the viewer shows the input alone.
  $("compare").classList.add("single");
  $("compare").hidden = true;
  showInput(job);
  poll(job);
}

async function showInput(job) {
  try {
    if (!job.before) job.before = (await api("GET", `/download/input/${job.id}`)).download_url;
  } catch {
    return; // the input is gone (a deleted source); the status still shows
  }
  if (job !== current) return;
  $("before").src = job.before;
  $("compare").hidden = false;
}

async function poll(job) {
  if (job !== current) return;
  let status;
  try {
    status = await api("GET", `/status/${job.id}`);
  } catch (err) {
    notice(err.message);
    return;
  }
  if (job !== current) return;
  $("compare").style.setProperty("--ratio", `${status.output_width} / ${status.output_height}`);
  $("job-status").textContent = status.status;
  $("job-status").className = "badge " + status.status;
  $("progress").value = status.progress;
  $("progress-text").textContent = `${status.progress}%`;
  const left = status.eta - Math.floor(Date.now() / 1000);
  $("eta").textContent = TERMINAL.includes(status.status) ? "" : `ETA ${Math.max(0, left)} s`;
  $("cancel").hidden = TERMINAL.includes(status.status);
  if (!TERMINAL.includes(status.status)) {
    job.timer = setTimeout(() => poll(job), 500);
    return;
  }
  refreshJobs();
  if (status.status === "Completed") await showResult(job, status);
}

async function showResult(job, status) {
  const output = await api("GET", `/download/${job.id}`);
  await showInput(job);
  if (job !== current) return;
  $("after").src = output.download_url;
  $("compare").classList.remove("single");
  const stem = status.filename.replace(/\.[^.]*$/, "");
  const ext = status.output_format === "jpeg" ? "jpg" : status.output_format;
  $("download").href = output.download_url;
  $("download").download = `${stem}-${status.category.toLowerCase()}.${ext}`;
  $("download").hidden = false;
}

$("slider").addEventListener("input", (e) => {
  $("compare").style.setProperty("--split", `${e.target.value}%`);
});

$("cancel").addEventListener("click", async () => {
  if (!current) return;
  try {
    await api("DELETE", `/cancel/${current.id}`);
    notice("Cancelled", true);
  } catch (err) {
    notice(err.message);
  }
  poll(current);
});

// ---- past jobs ------------------------------------------------------------------------------

async function refreshJobs() {
  const query = new URLSearchParams({ paginated: "true", limit: "50" });
  if ($("filter-status").value) query.set("status", $("filter-status").value);
  if ($("filter-model").value) query.set("model", $("filter-model").value);
  let page;
  try {
    page = await api("GET", `/status?${query}`);
  } catch (err) {
    notice(err.message);
    return;
  }
  $("jobs-table").replaceChildren(...page.data.map((j) => {
    const row = document.createElement("tr");
    row.dataset.id = j.process_id;
    const cells = [
      j.filename,
      `${j.category} / ${j.model}`,
      j.status,
      j.progress,
      `${j.input_width}×${j.input_height} → ${j.output_width}×${j.output_height}`,
      new Date(j.creation_time * 1000).toLocaleString(),
    ];
    row.append(...cells.map((c) => Object.assign(document.createElement("td"), { textContent: c })));
    row.addEventListener("click", () => show({ id: j.process_id, name: j.filename, before: null }));
    return row;
  }));
}

$("refresh-jobs").addEventListener("click", refreshJobs);
$("filter-status").addEventListener("change", refreshJobs);
$("filter-model").addEventListener("change", refreshJobs);

// ---- start ----------------------------------------------------------------------------------

await loadCatalogue();
showKeyPanel(!key());
if (key()) refreshJobs();
