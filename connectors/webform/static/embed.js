/*
 * Switchboard embeddable form. Place it with
 *   <div data-switchboard-form="KEY"></div>
 *   <script src="https://HOST/forms/KEY/embed.js" async></script>
 * (without the div, the form goes right after the script tag).
 *
 * It fetches the form's public description, draws the form with createElement and
 * textContent only (never HTML from data), and posts it with fetch: JSON, or FormData when
 * the form has a file field. Field errors from a 422 answer are shown beside the fields.
 */
(function () {
  "use strict";

  var CONFIG = /*SWITCHBOARD_CONFIG*/null;
  if (!CONFIG || !window.fetch || !document.createElement) {
    return;
  }
  var currentScript = document.currentScript;
  var instances = 0;
  var GENERIC = "The form could not be sent. Please try again.";

  function el(tag, attributes, text) {
    var node = document.createElement(tag);
    var name;
    for (name in attributes || {}) {
      if (Object.prototype.hasOwnProperty.call(attributes, name) && attributes[name] != null) {
        node.setAttribute(name, String(attributes[name]));
      }
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function ownScript() {
    if (currentScript) {
      return currentScript;
    }
    var scripts = document.getElementsByTagName("script");
    var wanted = "/forms/" + encodeURIComponent(CONFIG.key) + "/embed.js";
    for (var i = 0; i < scripts.length; i++) {
      if ((scripts[i].getAttribute("src") || "").indexOf(wanted) !== -1) {
        return scripts[i];
      }
    }
    return null;
  }

  function containers() {
    var found = [];
    var nodes = document.querySelectorAll("[data-switchboard-form]");
    for (var i = 0; i < nodes.length; i++) {
      // Compared as a string rather than put in a selector: the key is data.
      if (nodes[i].getAttribute("data-switchboard-form") === CONFIG.key &&
          !nodes[i].hasAttribute("data-switchboard-rendered")) {
        found.push(nodes[i]);
      }
    }
    if (found.length === 0) {
      var script = ownScript();
      if (script && script.parentNode) {
        var holder = el("div", { "data-switchboard-form": CONFIG.key });
        script.parentNode.insertBefore(holder, script.nextSibling);
        found.push(holder);
      }
    }
    return found;
  }

  function isWebUrl(value) {
    return typeof value === "string" && /^https?:\/\//i.test(value);
  }

  function fetchDescription() {
    return fetch(CONFIG.descriptionUrl, {
      credentials: "omit",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("description " + response.status);
      }
      return response.json();
    });
  }

  function Form(container, description) {
    this.container = container;
    this.description = description;
    this.prefix = "sb" + (++instances) + "-";
    this.controls = {};
    this.errors = {};
    this.busy = false;
    this.build();
  }

  Form.prototype.build = function () {
    var d = this.description;
    var form = el("form", {
      method: "post",
      action: d.submit_url,
      "accept-charset": "UTF-8",
      lang: d.language,
      "class": "sb-form",
    });
    if (d.name) {
      form.appendChild(el("h2", { "class": "sb-title" }, d.name));
    }
    if (d.description) {
      form.appendChild(el("p", { "class": "sb-description" }, d.description));
    }
    this.summary = el("div", { role: "alert", tabindex: "-1", "class": "sb-error-summary" });
    this.summary.hidden = true;
    form.appendChild(this.summary);
    for (var i = 0; i < d.fields.length; i++) {
      form.appendChild(this.buildField(d.fields[i]));
    }
    form.appendChild(this.buildHoneypot());
    this.token = el("input", { type: "hidden", name: d.token_field, value: d.token || "" });
    form.appendChild(this.token);
    this.button = el("button", { type: "submit" }, d.submit_label);
    form.appendChild(this.button);
    var self = this;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.submit();
    });
    this.form = form;
    this.container.setAttribute("data-switchboard-rendered", "");
    this.container.appendChild(form);
  };

  Form.prototype.buildField = function (field) {
    var id = this.prefix + field.name;
    var wrapper = el("div", { "class": "sb-field sb-field--" + field.type });
    var label = el("label", { "for": id }, field.label);
    if (field.required) {
      label.appendChild(document.createTextNode(" "));
      label.appendChild(el("span", { "class": "sb-required" }, "(required)"));
    }
    var control;
    if (field.type === "textarea") {
      control = el("textarea", { dir: "auto", maxlength: field.max_length });
    } else if (field.type === "select") {
      control = el("select");
      control.appendChild(el("option", { value: "" }, "Choose\u2026"));
      for (var i = 0; i < field.options.length; i++) {
        control.appendChild(el("option", { value: field.options[i].value }, field.options[i].label));
      }
    } else if (field.type === "checkbox") {
      control = el("input", { type: "checkbox", value: "on" });
    } else if (field.type === "file") {
      control = el("input", { type: "file", accept: (field.accept || []).join(",") });
    } else {
      var types = { email: "email", phone: "tel" };
      control = el("input", {
        type: types[field.type] || "text",
        dir: "auto",
        maxlength: field.max_length,
        autocomplete: field.autocomplete,
      });
    }
    control.id = id;
    control.name = field.name;
    if (field.placeholder) {
      control.setAttribute("placeholder", field.placeholder);
    }
    if (field.required) {
      control.required = true;
    }
    var described = [];
    var help = null;
    if (field.help_text) {
      help = el("p", { "class": "sb-help", id: id + "-help" }, field.help_text);
      described.push(help.id);
    }
    var error = el("p", { "class": "sb-error", id: id + "-error" });
    error.hidden = true;
    if (described.length) {
      control.setAttribute("aria-describedby", described.join(" "));
    }
    if (field.type === "checkbox") {
      wrapper.appendChild(control);
      wrapper.appendChild(label);
    } else {
      wrapper.appendChild(label);
    }
    if (help) {
      wrapper.appendChild(help);
    }
    wrapper.appendChild(error);
    if (field.type !== "checkbox") {
      wrapper.appendChild(control);
    }
    this.controls[field.name] = { field: field, control: control, error: error, described: described };
    return wrapper;
  };

  Form.prototype.buildHoneypot = function () {
    // Off-screen rather than display:none, which some bots detect; hidden from assistive
    // technology and skipped by the keyboard. Styled through the CSSOM, which a page's
    // Content-Security-Policy allows, unlike style attributes.
    var box = el("div", { "aria-hidden": "true", "class": "sb-hp" });
    box.style.position = "absolute";
    box.style.left = "-10000px";
    box.style.width = "1px";
    box.style.height = "1px";
    box.style.overflow = "hidden";
    var id = this.prefix + "hp";
    box.appendChild(el("label", { "for": id }, "Leave this field empty"));
    this.honeypot = el("input", {
      type: "text",
      id: id,
      name: this.description.honeypot_field,
      tabindex: "-1",
      autocomplete: "off",
    });
    box.appendChild(this.honeypot);
    return box;
  };

  Form.prototype.body = function () {
    var d = this.description;
    var extra = { _page_url: window.location.href, _referrer: document.referrer || "" };
    var name;
    if (d.encoding === "multipart") {
      var data = new FormData(this.form);
      for (name in extra) {
        data.append(name, extra[name]);
      }
      return { body: data, headers: { Accept: "application/json" } };
    }
    var json = {};
    for (name in this.controls) {
      var entry = this.controls[name];
      json[name] = entry.field.type === "checkbox" ? entry.control.checked : entry.control.value;
    }
    json[d.token_field] = this.token.value;
    json[d.honeypot_field] = this.honeypot.value;
    for (name in extra) {
      json[name] = extra[name];
    }
    return {
      body: JSON.stringify(json),
      headers: { Accept: "application/json", "Content-Type": "application/json" },
    };
  };

  Form.prototype.submit = function () {
    if (this.busy) {
      return;
    }
    this.busy = true;
    this.button.disabled = true;
    this.clearErrors();
    var request = this.body();
    var self = this;
    fetch(this.description.submit_url, {
      method: "POST",
      body: request.body,
      headers: request.headers,
      credentials: "omit",
      mode: "cors",
    }).then(function (response) {
      return response.json().then(function (data) {
        return { status: response.status, data: data };
      }, function () {
        return { status: response.status, data: {} };
      });
    }).then(function (result) {
      self.done(result.status, result.data || {});
    }, function () {
      self.done(0, {});
    });
  };

  Form.prototype.done = function (status, data) {
    this.busy = false;
    this.button.disabled = false;
    if (status >= 200 && status < 300) {
      this.succeed(data);
      return;
    }
    var error = data.error || {};
    if (error.code === "expired" || error.code === "bad_token" || error.code === "wrong_form" ||
        error.code === "missing_token") {
      this.refreshToken();
    }
    if (status === 0) {
      this.showErrors({}, "The form could not be sent. Check your connection and try again.");
    } else {
      this.showErrors(error.fields || {}, error.message || GENERIC);
    }
  };

  Form.prototype.refreshToken = function () {
    var self = this;
    fetchDescription().then(function (description) {
      self.token.value = description.token || "";
    }, function () {});
  };

  Form.prototype.succeed = function (data) {
    var redirect = data.redirect_url || this.description.success.redirect_url;
    if (isWebUrl(redirect)) {
      window.location.assign(redirect);
      return;
    }
    var message = el("p", { role: "status", "class": "sb-success" },
      data.message || this.description.success.message);
    this.container.replaceChild(message, this.form);
  };

  Form.prototype.clearErrors = function () {
    var name;
    for (name in this.controls) {
      var entry = this.controls[name];
      entry.error.hidden = true;
      entry.error.textContent = "";
      entry.control.removeAttribute("aria-invalid");
      if (entry.described.length) {
        entry.control.setAttribute("aria-describedby", entry.described.join(" "));
      } else {
        entry.control.removeAttribute("aria-describedby");
      }
    }
    while (this.summary.firstChild) {
      this.summary.removeChild(this.summary.firstChild);
    }
    this.summary.hidden = true;
  };

  Form.prototype.showErrors = function (fields, message) {
    this.summary.appendChild(el("p", { "class": "sb-error-title" }, message));
    var list = el("ul");
    var name;
    for (name in fields) {
      if (!Object.prototype.hasOwnProperty.call(fields, name)) {
        continue;
      }
      var entry = this.controls[name];
      if (!entry) {
        list.appendChild(el("li", {}, fields[name]));
        continue;
      }
      entry.error.textContent = String(fields[name]);
      entry.error.hidden = false;
      entry.control.setAttribute("aria-invalid", "true");
      entry.control.setAttribute("aria-describedby", entry.described.concat([entry.error.id]).join(" "));
      var item = el("li");
      var link = el("a", { href: "#" + entry.control.id }, entry.field.label + ": " + fields[name]);
      item.appendChild(link);
      list.appendChild(item);
    }
    if (list.firstChild) {
      this.summary.appendChild(list);
    }
    this.summary.hidden = false;
    this.summary.focus();
  };

  function start() {
    var targets = containers();
    if (targets.length === 0) {
      return;
    }
    fetchDescription().then(function (description) {
      for (var i = 0; i < targets.length; i++) {
        new Form(targets[i], description);
      }
    }, function () {
      for (var i = 0; i < targets.length; i++) {
        targets[i].appendChild(el("p", { "class": "sb-error" }, "The form could not be loaded."));
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
