// The p2pcity console: read-only views of this node's public API, live over /events.
// Everything a chain holds is shown with textContent, never parsed as HTML: a record name, a title or
// a metadata value is whatever a signer chose, and must show as text, not run as code.
"use strict";

const MAX_ROWS = 15;
const $ = (id) => document.getElementById(id);
const short = (hex) => (hex ? hex.slice(0, 16) + "…" : "");
const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "");

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}
// A cell: text, {hex} (shortened, full on hover), {link, text} or a node.
function cell(value) {
  const td = el("td");
  if (value instanceof Node) td.appendChild(value);
  else if (value && typeof value === "object" && "hex" in value) {
    td.className = "mono";
    td.title = value.hex || "";
    td.textContent = short(value.hex);
  } else if (value && typeof value === "object" && "link" in value) {
    td.appendChild(el("a", value.text, {href: value.link}));
  } else td.textContent = value === null || value === undefined ? "" : String(value);
  return td;
}
function table(id, headings) {
  const t = el("table", null, {id});
  const tr = el("tr");
  for (const h of headings) tr.appendChild(el("th", h));
  t.appendChild(tr);
  return t;
}
function addRow(t, cells, first) {
  const tr = el("tr");
  for (const c of cells) tr.appendChild(cell(c));
  t.insertBefore(tr, first ? t.rows[0].nextSibling : null);
  return tr;
}
async function get(path) {
  const response = await fetch(path, {headers: {Accept: "application/json"}});
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}
const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  return q.toString();
};

// A paged list: rows from `path` (with `after` cursors) and a "more" button while there are more.
async function pagedList(view, id, headings, path, params, toCells) {
  const t = table(id, headings);
  view.appendChild(t);
  const more = el("button", "more", {id: id + "-more"});
  more.hidden = true;
  view.appendChild(more);
  let after = null;
  const load = async () => {
    const page = await get(path + "?" + query({...params, limit: 20, after}));
    for (const item of page.items) addRow(t, toCells(item));
    after = page.next;
    more.hidden = !after;
    if (!page.items.length && t.rows.length === 1) view.appendChild(el("p", "none yet", {class: "muted"}));
  };
  more.onclick = () => load().catch(showError);
  await load();
}

// ---- live header and the blocks table of the overview -------------------------------------------
let blocksTable = null;
function blockCells(b) {
  return [b.height, {hex: b.hash}, b.tx_count, when(b.timestamp_ms).slice(11), {hex: b.proposer}];
}
// The status facts, filled on load and again on every committed block.
const FACTS = [
  ["chain", (s) => s.chain_id], ["district", (s) => s.district], ["account", (s) => ({hex: s.account})],
  ["height", (s) => s.height], ["state", (s) => (s.syncing ? "catching up" : "in sync")],
  ["last commit", (s) => (s.last_commit_age_s === null ? "never" : s.last_commit_age_s.toFixed(1) + " s ago")],
  ["peers", (s) => s.peers], ["validators", (s) => s.validators], ["genesis", (s) => ({hex: s.genesis})],
  ["version", (s) => s.version],
];
async function refreshStatus() {
  const s = await get("/status");
  $("district").textContent = s.district;
  $("height").textContent = String(s.height);
  $("syncing").textContent = s.syncing ? "catching up" : "in sync";
  $("syncing").className = s.syncing ? "bad" : "ok";
  const st = $("status");
  if (st) {
    st.replaceChildren();
    for (const [k, f] of FACTS) addRow(st, [el("b", k), f(s)]).id = "status-" + k.replace(" ", "-");
  }
  return s;
}
function follow(fromHeight) {
  const source = new EventSource("/events?" + query({topic: "blocks", after: fromHeight + ":0"}));
  source.onopen = () => { $("live").textContent = "(live)"; };
  source.onerror = () => { $("live").textContent = "(reconnecting)"; };
  source.addEventListener("block", (e) => {
    const b = JSON.parse(e.data);
    $("height").textContent = String(b.height);
    refreshStatus().catch(showError);
    if (blocksTable && blocksTable.isConnected) {
      addRow(blocksTable, blockCells(b), true);
      while (blocksTable.rows.length > MAX_ROWS + 1) blocksTable.deleteRow(blocksTable.rows.length - 1);
    }
  });
}

// ---- pages ---------------------------------------------------------------------------------------
async function overview(view) {
  view.appendChild(el("h2", "Status"));
  view.appendChild(el("table", null, {id: "status"}));
  await refreshStatus();
  view.appendChild(el("h2", "Validators and districts"));
  const vt = table("validators", ["district", "role", "account", "since height"]);
  view.appendChild(vt);
  for (const d of (await get("/validators")).districts) addRow(vt, [d.name, d.role, {hex: d.account}, d.since_height]);
  view.appendChild(el("h2", "Latest blocks"));
  blocksTable = table("blocks", ["height", "hash", "txs", "time (UTC)", "proposer"]);
  view.appendChild(blocksTable);
  for (const b of (await get("/blocks?limit=" + MAX_ROWS)).items) addRow(blocksTable, blockCells(b));
  view.appendChild(el("h2", "Audit log (latest accesses)"));
  await pagedList(view, "audit", ["height", "dataset", "grantee", "purpose", "outcome"], "/audit", {},
    (a) => [a.height, {hex: a.dataset}, {hex: a.grantee}, a.purpose, a.granted ? "granted" : "refused: " + a.reason]);
}

async function records(view, params) {
  view.appendChild(el("h2", params.namespace ? "Records in " + params.namespace : "Records"));
  await pagedList(view, "records", ["name", "version", "sha256", "size", "signer", "height"], "/records",
    {namespace: params.namespace},
    (r) => [{link: "#/record?" + query({name: r.name}), text: r.name}, r.version, {hex: r.sha256}, r.size,
      {hex: r.signer}, r.height]);
}

async function record(view, params) {
  view.appendChild(el("h2", "Record " + params.name));
  const t = table("history", ["version", "sha256", "size", "type", "metadata", "signer", "height", "time (UTC)"]);
  view.appendChild(t);
  let after = null;
  do {
    const page = await get("/records-history/" + encodeURIComponent(params.name) + "?" + query({limit: 100, after}));
    for (const r of page.items) {
      addRow(t, [r.version, {hex: r.sha256}, r.size, r.media_type, JSON.stringify(r.metadata), {hex: r.signer},
        r.height, when(r.timestamp_ms)]);
      const proof = el("div", "inclusion proof: checking…", {class: "proof", id: "proof-" + r.version});
      const holder = el("tr");
      const td = el("td", null, {colspan: "8"});
      td.appendChild(proof);
      holder.appendChild(td);
      t.appendChild(holder);
      checkInclusion(r, proof).catch((err) => { proof.textContent = "inclusion proof: " + err.message; proof.className = "proof bad"; });
    }
    after = page.next;
  } while (after);
}

// The record's transaction is a leaf of its block's tx Merkle tree (p2pcity.crypto.hashing):
// leaf = sha256(0x00 | tx hash), node = sha256(0x01 | left | right), a last odd node promoted.
async function checkInclusion(r, out) {
  const p = await get("/txs/" + r.tx + "/proof");
  const block = await get("/blocks/" + p.height);
  const signers = block.commit_qc ? block.commit_qc.signers.length : 0;
  const head = "tx " + short(r.tx) + " is leaf " + p.proof.index + " of " + p.proof.size + " in block " +
    p.height + " (" + short(block.hash) + ", certified by " + signers + " validator votes)";
  if (!(window.crypto && crypto.subtle)) {
    out.textContent = head + "; not checked here: the browser computes SHA-256 only over https or on localhost";
    return;
  }
  const ok = (await merkleRoot(r.tx, p.proof)) === block.tx_root && p.tx_root === block.tx_root;
  out.textContent = head + (ok ? "; checked in this browser against the block's tx_root" : "; PROOF DOES NOT MATCH the block's tx_root");
  out.className = ok ? "proof ok" : "proof bad";
}
const fromHex = (hex) => new Uint8Array(hex.match(/../g).map((b) => parseInt(b, 16)));
const toHex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
async function tagged(tag, ...parts) {
  const all = new Uint8Array(1 + parts.reduce((n, p) => n + p.length, 0));
  all[0] = tag;
  let at = 1;
  for (const p of parts) { all.set(p, at); at += p.length; }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}
async function merkleRoot(itemHex, proof) {
  let node = await tagged(0, fromHex(itemHex));
  let pos = proof.index, size = proof.size, next = 0;
  while (size > 1) {
    if ((pos ^ 1) < size) {
      const sibling = fromHex(proof.siblings[next++]);
      node = pos % 2 === 0 ? await tagged(1, node, sibling) : await tagged(1, sibling, node);
    }
    pos = Math.floor(pos / 2);
    size = Math.floor((size + 1) / 2);
  }
  return next === proof.siblings.length ? toHex(node) : "";
}

async function datasets(view, params) {
  view.appendChild(el("h2", "Datasets"));
  await pagedList(view, "datasets", ["title", "id", "owner", "tags", "size", "height", "grants"], "/datasets",
    {owner: params.owner},
    (d) => [d.title, {hex: d.id}, {hex: d.owner}, d.tags.join(", "), d.size, d.height,
      {link: "#/grants?" + query({dataset: d.id}), text: "grants"}]);
}

function grantState(g, nowMs) {
  if (g.revoked_height) return "revoked at height " + g.revoked_height;
  if (g.expires_at_ms && g.expires_at_ms <= nowMs) return "expired";
  if (g.max_uses && g.uses >= g.max_uses) return "used up";
  return "live";
}
async function grants(view, params) {
  view.appendChild(el("h2", params.dataset ? "Grants on dataset " + short(params.dataset) : "Grants"));
  const now = Date.now();
  await pagedList(view, "grants", ["id", "dataset", "grantee", "purpose", "uses", "expires (UTC)", "state"], "/grants",
    {dataset: params.dataset, grantee: params.grantee},
    (g) => [{hex: g.id}, {hex: g.dataset}, {hex: g.grantee}, g.purpose,
      g.uses + (g.max_uses ? " of " + g.max_uses : ""), g.expires_at_ms ? when(g.expires_at_ms) : "never",
      grantState(g, now)]);
}

async function peers(view) {
  view.appendChild(el("h2", "Connected peers"));
  const t = table("peers", ["district", "role", "peer id"]);
  view.appendChild(t);
  const found = await get("/peers");
  for (const p of found) addRow(t, [p.district || "(not a district)", p.role, p.peer_id]);
  if (!found.length) view.appendChild(el("p", "no peer connected", {class: "muted"}));
}

// ---- routing: #/page?key=value ---------------------------------------------------------------------
const PAGES = {"": overview, records, record, datasets, grants, peers};
function showError(err) {
  $("view").appendChild(el("p", "error: " + err.message, {class: "bad", id: "error"}));
}
async function route() {
  const [path, q] = location.hash.replace(/^#\/?/, "").split("?");
  const page = PAGES[path] || overview;
  for (const a of document.querySelectorAll("nav a")) {
    a.className = a.getAttribute("href").replace(/^#\/?/, "") === path ? "here" : "";
  }
  const view = $("view");
  view.replaceChildren();
  delete view.dataset.ready;
  view.dataset.page = path || "overview";
  await page(view, Object.fromEntries(new URLSearchParams(q || "")));
  view.dataset.ready = "yes";
}
window.addEventListener("hashchange", () => route().catch(showError));
refreshStatus()
  .then((s) => { follow(s.height); return route(); })
  .catch(showError);
