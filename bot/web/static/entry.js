// The live-code entry page: locate the visitor, list nearby groups, show the chosen one's code.
// All text from the server is put in with textContent, never as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("entry-data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var state = { entry: data.entry };

  function showError(message) {
    var el = $("error");
    el.textContent = message;
    el.hidden = !message;
  }
  function status(text) { $("status").textContent = text || ""; }

  async function post(url, body) {
    var res;
    try {
      res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                               body: JSON.stringify(body) });
    } catch (e) {
      throw new Error("网络连接失败，请检查网络后重试。");
    }
    var json = null;
    try { json = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) throw new Error((json && json.message) || "服务暂时不可用，请稍后再试。");
    return json;
  }

  function base() {
    var b = { channel: data.channel };
    if (data.ref) b.ref = data.ref;
    if (state.entry) b.entry = state.entry;
    return b;
  }

  async function route(extra) {
    showError("");
    status("正在查找附近的福利群…");
    $("chosen").hidden = true;
    try {
      var answer = await post("/api/route", Object.assign(base(), extra));
      state.entry = answer.entry;
      render(answer);
      status(answer.groups.length ? "已按距离" + (answer.label ? "（" + answer.label + "）" : "") + "排序：" : "");
    } catch (e) {
      status("");
      $("results").replaceChildren();
      showError(e.message);
    }
  }

  function render(answer) {
    var list = $("results");
    list.replaceChildren();
    var notice = $("notice");
    // Worded by the server: "none near you" and "all full near you" are different answers, and
    // the page never promises a message (it does not know who the visitor is).
    notice.hidden = !answer.notice;
    notice.textContent = answer.notice || "";
    showBotQr(!!answer.notice);
    if (!answer.groups.length) {
      // The notice already says why and what to do: a red error beside it would contradict it.
      if (!answer.notice) showError("抱歉，暂时没有可加入的福利群，请稍后再试。");
      return;
    }
    answer.groups.forEach(function (g) {
      var li = document.createElement("li");
      li.dataset.group = g.group;
      var info = document.createElement("div");
      var name = document.createElement("div");
      name.className = "name";
      name.textContent = g.name;
      var meta = document.createElement("div");
      meta.className = "meta";
      meta.textContent = g.distance_text + " · " + g.members + "/" + g.capacity + "人" +
        (g.join === "invite" ? " · 需邀请入群" : "");
      info.append(name, meta);
      var btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = "选择";
      btn.addEventListener("click", function () { choose(g); });
      li.append(info, btn);
      list.append(li);
    });
  }

  // The bot's own contact QR code (entry.bot_contact_qr), where the page asks the person to
  // add the bot as a friend: on WeChat one can only message an account one has added.
  function showBotQr(show) {
    var box = $("bot-qr");
    if (!box) return;
    box.hidden = !(show && data.bot_qr_url);
    if (!box.hidden && !box.querySelector("img")) {
      var img = document.createElement("img");
      img.src = data.bot_qr_url;
      img.alt = "添加" + data.bot_name + "为好友的二维码";
      box.prepend(img);
    }
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // WeChat's browser on plain http has no clipboard API: the old way still works there.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  function inviteBox(choice) {
    var hint = document.createElement("p");
    hint.id = "invite-hint";
    hint.textContent = choice.hint;
    var message = "入群 " + choice.invite_code;
    var row = document.createElement("div");
    row.className = "invite-code";
    var code = document.createElement("code");
    code.id = "invite-message";
    code.textContent = message;
    var copy = document.createElement("button");
    copy.type = "button";
    copy.id = "copy-code";
    copy.textContent = "复制";
    copy.addEventListener("click", function () {
      copyText(message).then(function () { copy.textContent = "已复制"; },
        function () { copy.textContent = "请长按文字复制"; });
    });
    row.append(code, copy);
    return [hint, row];
  }

  function blobToDataUrl(blob) {
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onload = function () { resolve(reader.result); };
      reader.onerror = function () { reject(new Error("群二维码显示失败，请稍后再试。")); };
      reader.readAsDataURL(blob);
    });
  }

  async function choose(group) {
    showError("");
    var qr = $("qr");
    qr.replaceChildren();
    $("qr-tip").hidden = true;
    try {
      var choice = await post("/api/choose", { entry: state.entry, group: group.group });
      $("chosen-name").textContent = choice.name;
      $("chosen").hidden = false;
      if (choice.join === "invite") {
        qr.append.apply(qr, inviteBox(choice));
        showBotQr(true);
        return;
      }
      var res = await fetch(choice.qr_png_url || choice.qr_url);
      if (!res.ok) {
        var err = null;
        try { err = await res.json(); } catch (e) { /* not JSON */ }
        throw new Error((err && err.message) || "群二维码暂时获取不到，请稍后再试。");
      }
      // An <img> (a PNG as a data URL), not inline SVG: WeChat's long-press
      // 识别图中二维码 only works on images.
      var img = document.createElement("img");
      img.alt = "入群二维码";
      img.src = await blobToDataUrl(await res.blob());
      qr.append(img);
      $("qr-tip").hidden = false;
      $("chosen").scrollIntoView({ behavior: "smooth" });
    } catch (e) {
      showError(e.message);
    }
  }

  $("locate").addEventListener("click", function () {
    if (!navigator.geolocation) {
      showError("您的浏览器不支持定位，请选择城市和区域，或输入地址。");
      return;
    }
    showError("");
    status("正在获取您的位置…");
    navigator.geolocation.getCurrentPosition(function (pos) {
      // The browser gives WGS-84 (GPS) coordinates.
      route({ lat: pos.coords.latitude, lon: pos.coords.longitude, crs: "wgs84" });
    }, function () {
      status("");
      showError("无法获取您的位置（可能未授权定位），请选择城市和区域，或输入地址。");
    }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
  });

  $("city").addEventListener("change", function () {
    var select = $("district");
    select.replaceChildren();
    var city = data.cities.find(function (c) { return c.name === $("city").value; });
    var first = document.createElement("option");
    first.value = "";
    first.textContent = city ? "请选择区域" : "请先选择城市";
    select.append(first);
    (city ? city.districts : []).forEach(function (d) {
      var o = document.createElement("option");
      o.value = d;
      o.textContent = d;
      select.append(o);
    });
    select.disabled = !city;
  });

  $("district").addEventListener("change", function () {
    if ($("city").value && $("district").value) {
      route({ city: $("city").value, district: $("district").value });
    }
  });

  function goAddress() {
    var text = $("address").value.trim();
    if (!text) { showError("请输入地址，例如“深圳南山科技园”。"); return; }
    route({ address: text });
  }
  $("address-go").addEventListener("click", goAddress);
  $("address").addEventListener("keydown", function (e) { if (e.key === "Enter") goAddress(); });
})();
