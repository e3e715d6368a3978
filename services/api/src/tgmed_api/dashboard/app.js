// The analysts' dashboard: every number comes from the API on the same origin (the
// same answers, cache and read-only role as any other client); the charts are Plotly,
// served from the installed plotly package. No request leaves the server it came from.
"use strict";

const FONT = getComputedStyle(document.documentElement).getPropertyValue("--text").trim();
const COLORS = ["#0b6e4f", "#c2410c", "#1d4ed8", "#a21caf", "#ca8a04", "#0e7490",
  "#b91c1c", "#4d7c0f", "#6d28d9", "#475569"];
const CATEGORY_COLORS = {promotional: "#c2410c", product_display: "#0b6e4f",
  lifestyle: "#1d4ed8", other: "#94a3b8"};
const CONFIG = {displaylogo: false, responsive: true};

const $ = (id) => document.getElementById(id);
const state = {channels: [], defaults: null, data: {}};
window.tgmed = state;  // what the page shows, for the curious and for the browser tests

function layout(extra) {
  return Object.assign({
    font: {family: FONT, size: 12},
    margin: {l: 50, r: 20, t: 10, b: 40},
    legend: {orientation: "h", y: -0.2},
    paper_bgcolor: "#fff", plot_bgcolor: "#fff",
  }, extra);
}

function colorOf(channel) {
  const index = state.channels.indexOf(channel);
  return COLORS[(index < 0 ? 0 : index) % COLORS.length];
}

async function api(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  const url = query.toString() ? `${path}?${query}` : path;
  const response = await fetch(url, {headers: {Accept: "application/json"}});
  if (response.status === 401) {  // the sign-in cookie expired or its key was revoked
    window.location.assign("/signin?next=/dashboard/");
    throw new Error("401: sign in again");
  }
  const body = await response.json();
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}

function filters() {
  return {channel: $("channel").value, from: $("from").value, to: $("to").value,
    period: $("period").value};
}

function selectedChannels() {
  const chosen = $("channel").value;
  return chosen ? [chosen] : state.channels;
}

// --- posting trends -----------------------------------------------------------------------
async function drawTrends() {
  const f = filters();
  const series = await Promise.all(selectedChannels().map((channel) =>
    api(`/api/channels/${encodeURIComponent(channel)}/activity`,
      {period: f.period, from: f.from, to: f.to})));
  state.data.trends = series;
  const traces = [];
  for (const activity of series) {
    const x = activity.data.map((p) => p.period_start);
    const color = colorOf(activity.channel_username);
    traces.push({name: `${activity.channel_username} posts`, x, y: activity.data.map((p) => p.post_count),
      type: "scatter", mode: "lines+markers", line: {color}, legendgroup: activity.channel_username});
    if (activity.data.some((p) => p.view_count !== null)) {
      traces.push({name: `${activity.channel_username} views`, x, y: activity.data.map((p) => p.view_count),
        type: "scatter", mode: "lines", yaxis: "y2", line: {color, dash: "dot"},
        legendgroup: activity.channel_username, connectgaps: false});
    }
  }
  await Plotly.react("trends", traces, layout({
    yaxis: {title: {text: `posts per ${f.period}`}, rangemode: "tozero"},
    yaxis2: {title: {text: "views"}, overlaying: "y", side: "right", rangemode: "tozero",
      showgrid: false},
    xaxis: {type: "date"},
  }), CONFIG);
}

// --- top products and objects, stacked by channel --------------------------------------
async function drawTop(source, element) {
  const f = filters();
  const limit = state.defaults.top_limit;
  const overall = await api("/api/reports/top-products",
    {limit, source, channel: f.channel, from: f.from, to: f.to});
  const channels = f.channel ? [f.channel] : state.channels;
  const perChannel = await Promise.all(channels.map((channel) =>
    api("/api/reports/top-products", {limit: 100, source, channel, from: f.from, to: f.to})));
  state.data[element] = {overall, perChannel};
  const keys = overall.data.map((item) => item.key).reverse();  // largest on top
  const names = Object.fromEntries(overall.data.map((item) => [item.key, item.name]));
  const traces = perChannel.map((answer, index) => {
    const counts = Object.fromEntries(answer.data.map((item) => [item.key, item.occurrences]));
    return {name: channels[index], type: "bar", orientation: "h",
      y: keys.map((key) => names[key]), x: keys.map((key) => counts[key] || 0),
      marker: {color: colorOf(channels[index])}};
  });
  await Plotly.react(element, traces, layout({barmode: "stack", margin: {l: 170, r: 20, t: 10, b: 40},
    xaxis: {title: {text: source === "text" ? "mentions" : "objects detected"}}}), CONFIG);
}

// --- prices -------------------------------------------------------------------------
function quantile(points, q) {  // points: [{price, count}] sorted by price
  const total = points.reduce((sum, p) => sum + p.count, 0);
  const at = (n) => { let seen = 0; for (const p of points) { seen += p.count; if (n < seen) return p.price; } };
  const position = q * (total - 1);
  const low = at(Math.floor(position)), high = at(Math.ceil(position));
  return low + (high - low) * (position - Math.floor(position));
}

async function drawPrices() {
  const f = filters();
  const product = $("product").value;
  if (!product) return;
  const [report, history] = await Promise.all([
    api("/api/reports/prices", {product, channel: f.channel, from: f.from, to: f.to}),
    api("/api/reports/prices/history", {product, period: f.period, channel: f.channel,
      from: f.from, to: f.to}),
  ]);
  state.data.prices = report;
  state.data.priceHistory = history;
  const traces = [];
  for (const channel of report.data) {
    const color = colorOf(channel.channel_username);
    traces.push({type: "box", name: channel.channel_username, x: [channel.channel_username],
      q1: [quantile(channel.points, 0.25)], median: [channel.median_price],
      q3: [quantile(channel.points, 0.75)], lowerfence: [channel.min_price],
      upperfence: [channel.max_price], marker: {color}, showlegend: false, hoverinfo: "y"});
    traces.push({type: "scatter", mode: "markers", name: `${channel.channel_username} prices`,
      x: channel.points.map(() => channel.channel_username), y: channel.points.map((p) => p.price),
      text: channel.points.map((p) => `${p.price} birr, ${p.count}x`), hoverinfo: "text",
      marker: {color, opacity: 0.75, size: channel.points.map((p) => 6 + 3 * Math.sqrt(p.count))},
      showlegend: false});
  }
  await Plotly.react("price-strip", traces, layout({
    yaxis: {title: {text: `${report.product_name}, birr`}}, boxmode: "overlay"}), CONFIG);
  const byChannel = {};
  for (const point of history.data) (byChannel[point.channel_username] ||= []).push(point);
  const lines = [];
  for (const [channel, points] of Object.entries(byChannel)) {
    const color = colorOf(channel);
    lines.push({name: `${channel} median`, type: "scatter", mode: "lines+markers", line: {color},
      x: points.map((p) => p.period_start), y: points.map((p) => p.median_price),
      error_y: {type: "data", symmetric: false, color,
        array: points.map((p) => p.max_price - p.median_price),
        arrayminus: points.map((p) => p.median_price - p.min_price)}});
    lines.push({name: `${channel} latest`, type: "scatter", mode: "markers", showlegend: false,
      marker: {color, symbol: "diamond-open", size: 9},
      x: points.map((p) => p.period_start), y: points.map((p) => p.latest_price)});
  }
  await Plotly.react("price-history", lines, layout({xaxis: {type: "date"},
    yaxis: {title: {text: `min / median / max per ${f.period}`}}}), CONFIG);
  const rows = report.data.map((c) => `<tr data-channel="${c.channel_username}">
    <td>${c.channel_username}</td><td>${c.price_count}</td><td class="min">${c.min_price}</td>
    <td class="median">${c.median_price}</td><td class="max">${c.max_price}</td>
    <td class="latest">${c.latest_price}</td><td>${c.latest_at.slice(0, 10)}</td></tr>`);
  $("price-table").querySelector("tbody").innerHTML = rows.join("");
}

// --- visual content -------------------------------------------------------------------
async function drawVisual() {
  const f = filters();
  const visual = await api("/api/reports/visual-content",
    {top: state.defaults.visual_top, channel: f.channel, from: f.from, to: f.to});
  state.data.visual = visual;
  const channels = visual.data.map((c) => c.channel_username);
  const traces = Object.entries(CATEGORY_COLORS).map(([category, color]) => ({
    name: category.replace("_", " "), type: "bar", x: channels, marker: {color},
    y: visual.data.map((c) => c.categories[category] || 0)}));
  const annotations = visual.data.map((c) => ({x: c.channel_username,
    y: Object.values(c.categories).reduce((a, b) => a + b, 0),
    text: `${Math.round(c.image_post_share * 100)}% of posts`, showarrow: false, yshift: 10}));
  await Plotly.react("visual", traces, layout({barmode: "stack", annotations,
    yaxis: {title: {text: "photos"}}}), CONFIG);
}

// --- engagement (what Telegram scrapes record; exports carry none of it) -------------
const NO_SCRAPES = "No Telegram scrapes yet: exports carry no subscriber counts and no "
  + "view readings, so subscribers, views per subscriber and views growth appear once "
  + "`tgmed-scraper scrape` has read these channels.";

function emptyLayout(text) {
  return layout({xaxis: {visible: false}, yaxis: {visible: false},
    annotations: [{text, showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5}]});
}

function byChannel(points) {
  const groups = {};
  for (const point of points) (groups[point.channel_username] ||= []).push(point);
  return Object.entries(groups);
}

function reactionLabel(item) {
  if (item.reaction_kind === "paid") return "⭐ paid";
  if (item.reaction_kind === "custom_emoji") return `custom ${item.reaction.split(":")[1]}`;
  return item.reaction;
}

async function drawEngagement() {
  const f = filters();
  const range = {channel: f.channel, from: f.from, to: f.to};
  const [subscribers, engagement, reactions, growth] = await Promise.all([
    api("/api/reports/subscribers", {...range, period: f.period}),
    api("/api/reports/engagement", {...range, period: f.period}),
    api("/api/reports/reactions", {...range, limit: state.defaults.reactions_top}),
    api("/api/reports/view-growth", range),
  ]);
  state.data.engagement = {subscribers, engagement, reactions, growth};
  const scraped = subscribers.count > 0 || growth.count > 0
    || engagement.data.some((p) => p.posts_with_subscribers > 0);
  $("engagement-empty").hidden = scraped;
  $("engagement-empty").textContent = scraped ? "" : NO_SCRAPES;
  // exports can carry reactions: the plots stay when there is anything to draw
  $("engagement-plots").hidden = !scraped && reactions.count === 0;

  const lines = byChannel(subscribers.data).map(([channel, points]) => ({
    name: channel, type: "scatter", mode: "lines+markers", line: {color: colorOf(channel)},
    x: points.map((p) => p.period_start), y: points.map((p) => p.subscriber_count)}));
  await Plotly.react("subscribers", lines, lines.length ? layout({
    xaxis: {type: "date"},
    yaxis: {title: {text: `subscribers (last scrape of the ${f.period})`}}})
    : emptyLayout("no subscriber counts: no scrape yet"), CONFIG);

  const rates = [];
  for (const [channel, points] of byChannel(engagement.data)) {
    const color = colorOf(channel);
    if (points.some((p) => p.views_per_subscriber !== null)) {
      rates.push({name: channel, type: "scatter", mode: "lines+markers", line: {color},
        x: points.map((p) => p.period_start), y: points.map((p) => p.views_per_subscriber),
        text: points.map((p) => `${p.posts_with_subscribers} posts, ${p.views_per_post === null
          ? "views unknown" : `${Math.round(p.views_per_post)} views per post`}`)});
    }
    if (points.some((p) => p.reactions_per_post !== null)) {
      rates.push({name: `${channel} reactions`, type: "scatter", mode: "lines", yaxis: "y2",
        line: {color, dash: "dot"}, x: points.map((p) => p.period_start),
        y: points.map((p) => p.reactions_per_post)});
    }
  }
  await Plotly.react("views-per-subscriber", rates, rates.length ? layout({
    margin: {l: 50, r: 50, t: 10, b: 40}, xaxis: {type: "date"},
    yaxis: {title: {text: "views per subscriber"}, rangemode: "tozero"},
    yaxis2: {title: {text: "reactions per post (dotted)"}, overlaying: "y", side: "right",
      rangemode: "tozero", showgrid: false}})
    : emptyLayout("no views or reactions known for these posts"), CONFIG);

  const channels = f.channel ? [f.channel] : state.channels;
  const labels = reactions.data.map(reactionLabel).reverse();  // most given on top
  const bars = channels.map((channel) => ({name: channel, type: "bar", orientation: "h",
    marker: {color: colorOf(channel)}, y: labels,
    x: reactions.data.map((item) => (item.channels.find((c) => c.channel_username === channel)
      || {reaction_count: 0}).reaction_count).reverse()}))
    .filter((trace) => trace.x.some((count) => count > 0));
  await Plotly.react("reactions", reactions.count ? bars : [], reactions.count ? layout({
    barmode: "stack", margin: {l: 90, r: 20, t: 10, b: 40},
    xaxis: {title: {text: "reactions on the posts"}}})
    : emptyLayout("no reactions in these posts"), CONFIG);

  const curves = byChannel(growth.data).map(([channel, points]) => ({
    name: channel, type: "scatter", mode: "lines+markers", line: {color: colorOf(channel)},
    x: points.map((p) => p.mean_hours_since_post), y: points.map((p) => p.mean_views),
    text: points.map((p) => `${p.age_hours_from}-${p.age_hours_to ?? ""} h: ${p.reading_count} readings`
      + (p.mean_views_per_subscriber === null ? ""
        : `, ${p.mean_views_per_subscriber.toFixed(3)} views per subscriber`))}));
  await Plotly.react("view-growth", curves, curves.length ? layout({
    xaxis: {title: {text: "hours since posting"}, type: "log"},
    yaxis: {title: {text: "mean views at that age"}, rangemode: "tozero"}})
    : emptyLayout("no view readings: no scrape yet"), CONFIG);
}

// --- candidate products ----------------------------------------------------------------
async function drawCandidates() {
  const f = filters();
  const found = await api("/api/reports/product-candidates", {min_posts: 2, limit: 30, channel: f.channel});
  state.data.candidates = found;
  const rows = found.data.map((c) => {
    const example = c.examples[0];
    return `<tr data-key="${escapeHtml(c.key)}"><td>${escapeHtml(c.name)}</td><td>${c.post_count}</td>
      <td>${escapeHtml(c.channels.join(", "))}</td><td>${c.first_posted_at.slice(0, 10)}</td>
      <td>${c.last_posted_at.slice(0, 10)}</td>
      <td class="text">${example ? escapeHtml(example.text) : ""}</td></tr>`;
  });
  $("candidates-table").querySelector("tbody").innerHTML = rows.join("")
    || '<tr><td colspan="6">no candidate named in two posts or more</td></tr>';
}

// --- search ---------------------------------------------------------------------------
function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

async function runSearch(event) {
  if (event) event.preventDefault();
  const query = $("query").value;
  const f = filters();
  try {
    const found = await api("/api/search/messages", {query, limit: 20, channel: f.channel,
      from: f.from, to: f.to});
    state.data.search = found;
    const total = found.total_is_exact ? found.total : `more than ${found.total_limit}`;
    $("search-summary").textContent = `${total} posts match "${query}" (newest first)`;
    $("search-results").innerHTML = found.data.map((hit) => `<li data-key="${escapeHtml(hit.message_key)}">
      <div class="meta">${escapeHtml(hit.channel_username)} · ${hit.posted_at.slice(0, 16).replace("T", " ")}
      · ${hit.view_count === null ? "views unknown" : `${hit.view_count} views`}</div>
      <div class="text">${escapeHtml(hit.text)}</div></li>`).join("");
  } catch (error) {
    state.data.search = null;
    $("search-summary").textContent = error.message;
    $("search-results").innerHTML = "";
  }
}

// --- wiring ---------------------------------------------------------------------------
// One refresh at a time, in the order asked: a filter changed while a refresh is in
// flight queues another (an older answer arriving late never paints over a newer one),
// and the page says loaded only when the newest has drawn.
let refreshes = 0;
let refreshing = Promise.resolve();
function refresh() {
  const mine = ++refreshes;
  document.body.dataset.loaded = "false";
  refreshing = refreshing.catch(() => {}).then(() => (mine === refreshes ? draw(mine) : undefined));
  return refreshing;
}

async function draw(mine) {
  $("status").className = "";
  $("status").textContent = "Loading...";
  try {
    await Promise.all([drawTrends(), drawTop("text", "top-products"), drawTop("image", "top-objects"),
      drawPrices(), drawVisual(), drawEngagement(), drawCandidates()]);
    const f = filters();
    $("status").textContent = `${f.channel || "All channels"}, ${f.from || "first post"} to ${f.to || "last post"}, by ${f.period}`;
    if ($("query").value) await runSearch();
  } catch (error) {
    $("status").className = "error";
    $("status").textContent = `Could not load: ${error.message}`;
  }
  if (mine === refreshes) document.body.dataset.loaded = "true";
}

async function start() {
  state.defaults = await (await fetch("defaults.json")).json();
  $("period").value = state.defaults.period;
  const channels = await api("/api/channels");
  state.channels = channels.data.map((c) => c.channel_username);
  for (const channel of state.channels) $("channel").add(new Option(channel, channel));
  const products = await api("/api/reports/top-products", {limit: 100});
  for (const item of products.data) $("product").add(new Option(item.name, item.key));
  for (const id of ["channel", "from", "to", "period"]) $(id).addEventListener("change", refresh);
  $("product").addEventListener("change", async () => {
    document.body.dataset.loaded = "false";
    await drawPrices().catch((error) => { $("status").textContent = error.message; });
    document.body.dataset.loaded = "true";
  });
  $("reset").addEventListener("click", () => {
    $("channel").value = ""; $("from").value = ""; $("to").value = "";
    $("period").value = state.defaults.period; refresh();
  });
  $("search-form").addEventListener("submit", async (event) => {
    document.body.dataset.loaded = "false";
    await runSearch(event);
    document.body.dataset.loaded = "true";
  });
  await refresh();
}

start().catch((error) => {
  $("status").className = "error";
  $("status").textContent = `Could not start: ${error.message}`;
  document.body.dataset.loaded = "true";
});
