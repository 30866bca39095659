// 群福模拟器页面：扮演持卡人，观察各福利群。
// Everything people typed is shown with textContent, never parsed as HTML.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 700;
  const STATE_EVERY = 3; // refresh rooms and members every third poll

  const sim = {
    bot: { id: "bot", name: "群福助手" },
    rooms: [], contacts: [], feed: [], seq: 0,
    room: null, who: null, city: null, pin: null,
    polls: 0, busy: false,
  };

  // --- small helpers -----------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function timeOf(iso) { return iso ? iso.slice(11, 19) : ""; }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = false;
  }

  function clearError() { $("error").hidden = true; $("error").textContent = ""; }

  async function api(path, body) {
    const init = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    };
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new Error("连接不上机器人，请确认 qunfu run 仍在运行。");
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const msg = data && (data.error || (typeof data.detail === "string" ? data.detail : null));
      throw new Error(msg || `请求失败（HTTP ${res.status}）`);
    }
    return data;
  }

  async function act(path, body) {
    try {
      const data = await api(path, body);
      clearError();
      await refresh();
      return data;
    } catch (e) {
      showError(e.message);
      return null;
    }
  }

  function roomById(id) { return sim.rooms.find((r) => r.id === id) || null; }
  function nameOf(id) {
    if (id === sim.bot.id) return sim.bot.name;
    const c = sim.contacts.find((p) => p.id === id);
    return c ? c.name : id;
  }

  // --- rendering ---------------------------------------------------------------------------------

  function renderWho() {
    const select = $("who");
    const keep = sim.who;
    const key = JSON.stringify(sim.contacts);
    if (select.dataset.key !== key) {  // rebuilding would close an open drop-down
      select.replaceChildren();
      if (sim.contacts.length === 0) select.append(new Option("（先添加一个人物）", ""));
      for (const c of sim.contacts) select.append(new Option(`${c.name}（${c.id}）`, c.id));
      select.dataset.key = key;
    }
    if (keep && sim.contacts.some((c) => c.id === keep)) select.value = keep;
    else if (sim.contacts.length) select.value = sim.contacts[0].id;
    sim.who = select.value || null;
    $("private-who").textContent = sim.who ? `· ${nameOf(sim.who)}` : "";
  }

  function renderRooms() {
    const list = $("rooms");
    list.replaceChildren();
    for (const r of sim.rooms) {
      const li = el("li");
      li.dataset.room = r.id;
      if (r.id === sim.room) li.classList.add("selected");
      const name = el("span", "room-name", r.name);
      if (sim.who && r.members.some((m) => m.id === sim.who)) name.append(el("span", "joined", "已加入"));
      li.append(name);
      const cap = r.capacity ? `/${r.capacity}` : "";
      const place = [r.city, r.district].filter(Boolean).join(" ");
      li.append(el("span", "meta", `${place} · 模拟成员 ${r.members.length} · 群人数 ${r.member_count}${cap}`));
      li.addEventListener("click", () => selectRoom(r.id));
      list.append(li);
    }
  }

  function renderRoomHead() {
    const r = roomById(sim.room);
    $("room-title").textContent = r ? r.name : "请选择一个群";
    $("room-meta").textContent = r
      ? `${r.id} · ${[r.city, r.district].filter(Boolean).join(" ")} · 群人数 ${r.member_count}${r.capacity ? "/" + r.capacity : ""}`
      : "";
    $("room-members").textContent = r
      ? (r.members.length ? "模拟成员：" + r.members.map((m) => m.name).join("、") : "模拟成员：暂无")
      : "";
    const inRoom = !!(r && sim.who && r.members.some((m) => m.id === sim.who));
    $("join").disabled = !r || !sim.who || inRoom;
    $("leave").disabled = !r || !sim.who || !inRoom;
    $("say").disabled = !r || !sim.who;
    $("private-say").disabled = !sim.who;
    $("share-location").disabled = !sim.who;
  }

  function messageNode(item) {
    const node = el("div", `msg ${item.by}`);
    node.dataset.seq = item.seq;
    node.dataset.kind = item.kind;
    if (item.by === "system") {
      node.append(el("span", "text", `${timeOf(item.at)} ${item.text}`));
      return node;
    }
    if (item.by === "person" && item.sender && item.sender.id === sim.who) node.classList.add("mine");
    const sender = item.sender ? item.sender.name : "";
    node.append(el("div", "who", `${sender} · ${timeOf(item.at)}`));
    const body = el("div", "text");
    const mentioned = (item.mentions || []).filter((m) => !item.text.includes("@" + m.name));
    if (mentioned.length) {
      node.dataset.mentions = (item.mentions || []).map((m) => m.id).join(" ");
      body.append(el("span", "mentions", mentioned.map((m) => "@" + m.name).join(" ")));
    } else if ((item.mentions || []).length) {
      node.dataset.mentions = item.mentions.map((m) => m.id).join(" ");
    }
    body.append(document.createTextNode(item.text));
    node.append(body);
    if (item.kind === "invite" && item.room) {
      const accept = el("button", "accept-invite", "接受邀请，进群");
      accept.type = "button";
      accept.dataset.room = item.room;
      accept.addEventListener("click", () => {
        const contact = item.conv.slice("contact:".length);
        const room = roomById(item.room);
        if (room && room.members.some((m) => m.id === contact)) {  // accepted already
          selectRoom(item.room);
          return;
        }
        act("/sim/api/join", { contact, room: item.room }).then(() => selectRoom(item.room));
      });
      node.append(accept);
    }
    return node;
  }

  function renderMessages(container, conv) {
    const nearBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 40;
    const items = conv ? sim.feed.filter((i) => i.conv === conv) : [];
    const lastShown = container.dataset.conv === conv ? Number(container.dataset.last || 0) : -1;
    const lastItem = items.length ? items[items.length - 1].seq : 0;
    if (lastShown === lastItem && container.dataset.who === String(sim.who)) return;
    container.replaceChildren(...items.map(messageNode));
    container.dataset.conv = conv || "";
    container.dataset.last = String(lastItem);
    container.dataset.who = String(sim.who);
    if (nearBottom || lastShown !== lastItem) container.scrollTop = container.scrollHeight;
  }

  function renderChats() {
    renderMessages($("chat"), sim.room ? `room:${sim.room}` : null);
    renderMessages($("private"), sim.who ? `contact:${sim.who}` : null);
  }

  // --- the map: the groups of one city, plotted on WGS-84 -----------------------------------------

  function cities() {
    const out = [];
    for (const r of sim.rooms) if (r.location && r.city && !out.includes(r.city)) out.push(r.city);
    return out;
  }

  function renderCitySelect() {
    const select = $("map-city");
    const list = cities();
    if (select.options.length === list.length &&
        list.every((c, i) => select.options[i].value === c)) return;
    select.replaceChildren(...list.map((c) => new Option(c, c)));
    if (!sim.city || !list.includes(sim.city)) sim.city = list[0] || null;
    if (sim.city) select.value = sim.city;
  }

  function projection() {
    const pts = sim.rooms.filter((r) => r.location && r.city === sim.city).map((r) => r.location);
    if (!pts.length) return null;
    let minLat = Math.min(...pts.map((p) => p.lat)), maxLat = Math.max(...pts.map((p) => p.lat));
    let minLon = Math.min(...pts.map((p) => p.lon)), maxLon = Math.max(...pts.map((p) => p.lon));
    const padLat = Math.max(0.01, (maxLat - minLat) * 0.2);
    const padLon = Math.max(0.01, (maxLon - minLon) * 0.2);
    minLat -= padLat; maxLat += padLat; minLon -= padLon; maxLon += padLon;
    const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
    const w = 400, h = 300;
    const scale = Math.min(w / ((maxLon - minLon) * k), h / (maxLat - minLat));
    const ox = (w - (maxLon - minLon) * k * scale) / 2;
    const oy = (h - (maxLat - minLat) * scale) / 2;
    return {
      toXY: (lat, lon) => [ox + (lon - minLon) * k * scale, oy + (maxLat - lat) * scale],
      toLatLon: (x, y) => [maxLat - (y - oy) / scale, minLon + (x - ox) / (k * scale)],
    };
  }

  function renderMap() {
    const map = $("map");
    map.replaceChildren();
    const proj = projection();
    if (!proj) {
      map.append(svgEl("text", { x: 200, y: 150, "text-anchor": "middle", class: "label" }, "暂无群位置"));
      return;
    }
    for (let i = 1; i < 8; i++) map.append(svgEl("line", { x1: i * 50, y1: 0, x2: i * 50, y2: 300, class: "grid-line" }));
    for (let i = 1; i < 6; i++) map.append(svgEl("line", { x1: 0, y1: i * 50, x2: 400, y2: i * 50, class: "grid-line" }));
    for (const r of sim.rooms) {
      if (!r.location || r.city !== sim.city) continue;
      const [x, y] = proj.toXY(r.location.lat, r.location.lon);
      const full = r.capacity && r.member_count >= r.capacity;
      const cls = full ? "full" : (r.member_count >= 200 ? "big" : "ok");
      const dot = svgEl("circle", { cx: x, cy: y, r: r.id === sim.room ? 8 : 6, class: `group ${cls}` });
      dot.dataset.room = r.id;
      dot.append(svgEl("title", {}, `${r.name}（${r.member_count}${r.capacity ? "/" + r.capacity : ""}人）`));
      map.append(dot);
      map.append(svgEl("text", { x: x + 9, y: y + 4, class: "label" }, r.name.replace(/福利/, "").slice(0, 10)));
    }
    if (sim.pin && sim.pin.city === sim.city) {
      const [x, y] = proj.toXY(sim.pin.lat, sim.pin.lon);
      map.append(svgEl("circle", { cx: x, cy: y, r: 5, class: "pin", id: "map-pin" }));
    }
  }

  function onMapClick(event) {
    const map = $("map");
    const proj = projection();
    if (!proj) return;
    const pt = map.createSVGPoint();
    pt.x = event.clientX; pt.y = event.clientY;
    const p = pt.matrixTransform(map.getScreenCTM().inverse());
    const [lat, lon] = proj.toLatLon(p.x, p.y);
    $("lat").value = lat.toFixed(6);
    $("lon").value = lon.toFixed(6);
    $("crs").value = "wgs84";
    sim.pin = { lat, lon, city: sim.city };
    renderMap();
  }

  // --- selection and data ------------------------------------------------------------------------

  function selectRoom(id) {
    sim.room = id;
    const r = roomById(id);
    if (r && r.city && cities().includes(r.city)) {
      sim.city = r.city;
      $("map-city").value = r.city;
    }
    renderAll();
  }

  function renderAll() {
    renderWho();
    renderRooms();
    renderRoomHead();
    renderCitySelect();
    renderMap();
    renderChats();
  }

  async function loadState() {
    const s = await api("/sim/api/state");
    sim.bot = s.bot;
    sim.rooms = s.rooms;
    sim.contacts = s.contacts;
    $("clock").textContent = timeOf(s.now);
    if (!sim.room && sim.rooms.length) sim.room = sim.rooms[0].id;
  }

  async function loadFeed() {
    const f = await api(`/sim/api/feed?after=${sim.seq}`);
    // A poll and a refresh after a click may overlap and fetch the same items: keep only what
    // is newer than what we hold by the time this answer arrives.
    const fresh = f.items.filter((item) => item.seq > sim.seq);
    if (fresh.length) {
      sim.feed.push(...fresh);
      if (sim.feed.length > 5000) sim.feed.splice(0, sim.feed.length - 5000);
    }
    sim.seq = Math.max(sim.seq, f.seq);
    $("clock").textContent = timeOf(f.now);
    return fresh.length > 0;
  }

  async function refresh() {
    await loadState();
    await loadFeed();
    renderAll();
  }

  async function poll() {
    if (sim.busy) return;
    sim.busy = true;
    try {
      sim.polls += 1;
      const fresh = await loadFeed();
      if (fresh || sim.polls % STATE_EVERY === 0) {
        await loadState();
        renderAll();
      }
      $("conn").hidden = true;
    } catch (e) {
      $("conn").hidden = false;
    } finally {
      sim.busy = false;
    }
  }

  // --- wiring ------------------------------------------------------------------------------------

  function wire() {
    $("who").addEventListener("change", () => { sim.who = $("who").value || null; renderAll(); });
    $("error").addEventListener("click", clearError);

    $("contact-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const name = $("new-contact-name").value;
      const made = await act("/sim/api/contacts", { name });
      if (made) {
        $("new-contact-name").value = "";
        sim.who = made.id;
        renderAll();
      }
    });

    $("join").addEventListener("click", () => act("/sim/api/join", { contact: sim.who, room: sim.room }));
    $("leave").addEventListener("click", () => act("/sim/api/leave", { contact: sim.who, room: sim.room }));

    $("say-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const ok = await act("/sim/api/say", {
        contact: sim.who, room: sim.room, text: $("say-text").value,
        mention_bot: $("mention-bot").checked,
      });
      if (ok) $("say-text").value = "";
    });

    $("private-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const ok = await act("/sim/api/say", { contact: sim.who, text: $("private-text").value });
      if (ok) $("private-text").value = "";
    });

    $("location-form").addEventListener("submit", (e) => {
      e.preventDefault();
      act("/sim/api/location", {
        contact: sim.who, lat: $("lat").value, lon: $("lon").value, crs: $("crs").value,
      });
    });

    $("map").addEventListener("click", onMapClick);
    $("map-city").addEventListener("change", () => { sim.city = $("map-city").value; renderMap(); });
  }

  async function start() {
    wire();
    try {
      await refresh();
    } catch (e) {
      showError(e.message);
    }
    setInterval(poll, POLL_MS);
  }

  start();
})();
