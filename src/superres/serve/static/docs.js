// The API reference, rendered in the browser from /openapi.json: each operation with its
// parameters, form fields, responses and a curl example. Built with DOM calls (no innerHTML),
// so text from the document is always shown as text.
"use strict";

(function () {
  let spec = null;

  function node(tag, attrs, ...children) {
    const element = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) element.setAttribute(key, value);
    for (const child of children) if (child !== null && child !== undefined) element.append(child);
    return element;
  }

  // Text with `code` spans, as FastAPI descriptions use them.
  function prose(text, tag) {
    const element = node(tag || "p");
    String(text || "").split("`").forEach((part, i) => element.append(i % 2 ? node("code", {}, part) : part));
    return element;
  }

  function resolve(schema) {
    let current = schema || {};
    for (let depth = 0; current.$ref && depth < 10; depth++) {
      current = current.$ref.replace(/^#\//, "").split("/").reduce((obj, key) => (obj || {})[key], spec) || {};
    }
    return current;
  }

  // OpenAPI 3.0 marks an upload as format "binary", 3.1 (what FastAPI writes now) by contentMediaType.
  function isFile(schema) {
    return Boolean(schema) && schema.type === "string" && (schema.format === "binary" || schema.contentMediaType !== undefined);
  }

  function typeName(schema) {
    if (!schema) return "";
    if (schema.$ref) return schema.$ref.split("/").pop();
    if (schema.enum) return "one of " + schema.enum.map((v) => JSON.stringify(v)).join(", ");
    if (schema.const !== undefined) return JSON.stringify(schema.const);
    for (const key of ["anyOf", "oneOf"]) {
      if (schema[key]) return schema[key].map(typeName).join(" or ");
    }
    if (schema.type === "array") return "array of " + typeName(schema.items);
    if (isFile(schema)) return "file";
    let name = schema.type || "any";
    const bounds = [];
    if (schema.minimum !== undefined) bounds.push("≥ " + schema.minimum);
    if (schema.maximum !== undefined) bounds.push("≤ " + schema.maximum);
    if (bounds.length) name += " (" + bounds.join(", ") + ")";
    return name;
  }

  function fieldTable(rows) {
    const head = node("tr", {}, node("th", {}, "name"), node("th", {}, "type"), node("th", {}, "default"), node("th", {}, "description"));
    const body = rows.map((row) => node("tr", {},
      node("td", {}, node("code", {}, row.name), row.required ? node("span", { class: "required" }, "required") : null),
      node("td", {}, typeName(row.schema)),
      node("td", {}, row.schema && row.schema.default !== undefined ? node("code", {}, JSON.stringify(row.schema.default)) : ""),
      node("td", {}, row.description || (row.schema && row.schema.description) || "")));
    return node("table", {}, node("thead", {}, head), node("tbody", {}, ...body));
  }

  function curlExample(method, path, formFields) {
    const url = location.origin + path;
    if (method === "get") return "curl " + url;
    const parts = ["curl -X " + method.toUpperCase()];
    for (const field of formFields) {
      if (isFile(field.schema)) parts.push("-F " + field.name + "=@photo.png");
      else if (field.name === "model") parts.push("-F model=bicubic");
      else if (field.name === "scale") parts.push("-F scale=2");
    }
    parts.push(url, "-o result.png");
    return parts.join(" ");
  }

  function operationCard(path, method, op) {
    const body = node("div", { class: "endpoint-body" });
    if (op.description) for (const paragraph of op.description.split(/\n\n+/)) body.append(prose(paragraph));

    const parameters = (op.parameters || []).map((p) => ({
      name: p.name + " (" + p.in + ")", required: p.required, schema: p.schema, description: p.description,
    }));
    if (parameters.length) body.append(node("h3", {}, "Parameters"), fieldTable(parameters));

    let formFields = [];
    const content = (op.requestBody && op.requestBody.content) || {};
    for (const [type, media] of Object.entries(content)) {
      const schema = resolve(media.schema);
      const required = new Set(schema.required || []);
      formFields = Object.entries(schema.properties || {}).map(([name, s]) => ({
        name, required: required.has(name), schema: s,
      }));
      body.append(node("h3", {}, "Request body (" + type + ")"), fieldTable(formFields));
    }

    const responses = Object.entries(op.responses || {}).map(([code, r]) => {
      const types = Object.keys(r.content || {});
      return node("tr", {}, node("td", {}, node("code", {}, code)), node("td", {}, r.description || ""),
        node("td", {}, types.join(", ")));
    });
    body.append(node("h3", {}, "Responses"), node("table", {},
      node("thead", {}, node("tr", {}, node("th", {}, "status"), node("th", {}, "meaning"), node("th", {}, "content"))),
      node("tbody", {}, ...responses)));

    body.append(node("h3", {}, "Example"), node("pre", {}, node("code", {}, curlExample(method, path, formFields))));

    const id = (method + path).replace(/[^a-z0-9]+/gi, "-");
    return node("section", { class: "panel endpoint", "aria-labelledby": id },
      node("div", { class: "endpoint-head" },
        node("span", { class: "method" }, method.toUpperCase()),
        node("h2", { id, class: "path" }, path),
        node("span", { class: "hint" }, op.summary || "")),
      body);
  }

  async function main() {
    const status = document.getElementById("status");
    try {
      const response = await fetch("/openapi.json");
      if (!response.ok) throw new Error("the server answered " + response.status);
      spec = await response.json();
    } catch (err) {
      status.textContent = "Could not read /openapi.json: " + err.message;
      return;
    }
    document.getElementById("title").textContent = spec.info.title + " API " + spec.info.version;
    document.getElementById("summary").textContent = spec.info.summary || "";
    document.getElementById("description").replaceWith(prose(spec.info.description));
    const endpoints = document.getElementById("endpoints");
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(item)) endpoints.append(operationCard(path, method, op));
    }
    status.textContent = "";
  }

  main();
})();
