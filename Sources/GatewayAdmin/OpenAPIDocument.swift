import GatewayCore
import GatewayStore

/// The OpenAPI 3.1 description of `/api/v1` served at `/api/v1/openapi.json`. Written out by
/// hand (no code generator here), and checked by the e2e tests with openapi-spec-validator and
/// against the live routes.
enum OpenAPIDocument {
    static let document: JSON = build()

    private static func ref(_ name: String) -> JSON { ["$ref": .string("#/components/schemas/\(name)")] }
    private static func nullable(_ type: String) -> JSON { ["type": [.string(type), "null"]] }
    private static func string(_ description: String? = nil) -> JSON {
        description.map { ["type": "string", "description": .string($0)] } ?? ["type": "string"]
    }
    private static let integer: JSON = ["type": "integer"]
    private static let number: JSON = ["type": "number"]
    private static let boolean: JSON = ["type": "boolean"]

    private static func object(_ properties: [(String, JSON)], required: [String] = []) -> JSON {
        var fields: [(String, JSON)] = [("type", "object"), ("properties", .object(JSONObject(properties)))]
        if !required.isEmpty { fields.append(("required", .array(required.map(JSON.string)))) }
        return .object(JSONObject(fields))
    }

    private static func listOf(_ schema: String, extra: [(String, JSON)] = []) -> JSON {
        object([("object", ["const": "list"]), ("data", ["type": "array", "items": ref(schema)])] + extra, required: ["object", "data"])
    }

    private static func parameter(_ name: String, in location: String = "query", _ description: String, schema: JSON = ["type": "string"],
                                  required: Bool = false) -> JSON {
        ["name": .string(name), "in": .string(location), "description": .string(description),
         "required": .bool(required || location == "path"), "schema": schema]
    }

    private static func json(_ schema: JSON, _ description: String) -> JSON {
        ["description": .string(description), "content": ["application/json": ["schema": schema]]]
    }

    private static let errors: [(String, JSON)] = [
        ("400", json(ref("Error"), "Invalid request (the message and param name the field)")),
        ("401", json(ref("Error"), "No admin token, or a wrong or revoked one")),
        ("403", json(ref("Error"), "A read-only token asked for a change, or a scoped token for a global setting")),
        ("404", json(ref("Error"), "Unknown, or outside the token's scope")),
    ]

    private static func operation(_ summary: String, id: String, parameters: [JSON] = [], body: JSON? = nil,
                                  responses: [(String, JSON)]) -> JSON {
        var fields: [(String, JSON)] = [("summary", .string(summary)), ("operationId", .string(id))]
        if !parameters.isEmpty { fields.append(("parameters", .array(parameters))) }
        if let body { fields.append(("requestBody", ["required": true, "content": ["application/json": ["schema": body]]])) }
        fields.append(("responses", .object(JSONObject(responses + errors))))
        return .object(JSONObject(fields))
    }

    private static let org = parameter("org", in: "path", "The org's name")
    private static let project = parameter("project", in: "path", "The project's name within its org")

    private static func build() -> JSON {
        let auditFilters: [JSON] = [
            parameter("from", "Start, inclusive (RFC 3339 or YYYY-MM-DD, UTC)", schema: ["type": "string"]),
            parameter("to", "End, exclusive (RFC 3339 or YYYY-MM-DD, UTC)"),
            parameter("project", "org/project"), parameter("key", "Key id (gk_…)"),
            parameter("model", "Model requested or served"), parameter("provider", "Provider that answered"),
            parameter("user", "The request body's user field"),
            parameter("status", "HTTP status", schema: ["type": "integer", "minimum": 100, "maximum": 599]),
            parameter("limit", "Rows per page (1–1000, default 100)", schema: ["type": "integer", "minimum": 1, "maximum": 1000]),
            parameter("cursor", "next_cursor of the previous page"),
            parameter("format", "json (a page, default), or ndjson / csv (the whole selection streamed)",
                      schema: ["type": "string", "enum": ["json", "ndjson", "csv"]]),
        ]
        let limitsBody: [(String, JSON)] = [
            ("rpm", nullable("integer")), ("tpm", nullable("integer")), ("monthly_budget_usd", nullable("number")),
        ]
        let paths: [(String, JSON)] = [
            ("/api/v1/audit", ["get": operation("A page of audit rows, newest first, or an export of the whole selection", id: "listAudit",
                parameters: auditFilters,
                responses: [("200", ["description": "A page (JSON) or the export (NDJSON / CSV)", "content": [
                    "application/json": ["schema": ref("AuditPage")],
                    "application/x-ndjson": ["schema": ["type": "string"]],
                    "text/csv": ["schema": ["type": "string"]],
                ]])])]),
            ("/api/v1/audit/{request_id}", ["get": operation("One audit row", id: "getAuditRow",
                parameters: [parameter("request_id", in: "path", "The request's X-Request-Id")],
                responses: [("200", json(ref("AuditRow"), "The row"))])]),
            ("/api/v1/usage", ["get": operation("Usage per group, from the rollup tables", id: "getUsage",
                parameters: [
                    parameter("from", "Start, inclusive (rounded down to the hour; default: 30 days before to)"),
                    parameter("to", "End, exclusive (rounded down to the hour; default: now)"),
                    parameter("project", "org/project"),
                    parameter("group_by", "Grouping (default model)", schema: ["type": "string",
                        "enum": .array(UsageGrouping.allCases.map { .string($0.rawValue) })]),
                ],
                responses: [("200", json(ref("Usage"), "Usage per group and in total"))])]),
            ("/api/v1/projects", [
                "get": operation("Projects in the token's scope", id: "listProjects", responses: [("200", json(listOf("Project"), "Projects"))]),
                "post": operation("Create a project (and its org, for an installation-wide token)", id: "createProject",
                    body: object([("name", string("org/project")), ("plan", ["type": "string", "enum": ["free", "pro", "team"]])] + limitsBody,
                                 required: ["name"]),
                    responses: [("201", json(ref("Project"), "Created")), ("409", json(ref("Error"), "Exists already"))]),
            ]),
            ("/api/v1/projects/{org}/{project}", [
                "get": operation("A project with its limits and month-to-date spend", id: "getProject", parameters: [org, project],
                    responses: [("200", json(ref("Project"), "The project"))]),
                "patch": operation("Change plan or limits (null clears a limit)", id: "updateProject", parameters: [org, project],
                    body: object([("plan", ["type": "string", "enum": ["free", "pro", "team"]])] + limitsBody),
                    responses: [("200", json(ref("Project"), "The project as changed"))]),
            ]),
            ("/api/v1/projects/{org}/{project}/keys", [
                "get": operation("The project's gateway keys (never their secrets)", id: "listKeys", parameters: [org, project],
                    responses: [("200", json(listOf("Key"), "Keys"))]),
                "post": operation("Create a gateway key; the secret is in this answer only", id: "createKey", parameters: [org, project],
                    body: object([("name", nullable("string"))] + limitsBody),
                    responses: [("201", json(ref("Key"), "The key, with its secret"))]),
            ]),
            ("/api/v1/keys/{key_id}", [
                "get": operation("One key", id: "getKey", parameters: [parameter("key_id", in: "path", "gk_…")],
                    responses: [("200", json(ref("Key"), "The key"))]),
                "patch": operation("Change a key's limits (null clears)", id: "updateKey", parameters: [parameter("key_id", in: "path", "gk_…")],
                    body: object(limitsBody), responses: [("200", json(ref("Key"), "The key as changed"))]),
                "delete": operation("Revoke a key (its next request gets 401)", id: "revokeKey", parameters: [parameter("key_id", in: "path", "gk_…")],
                    responses: [("200", json(ref("Key"), "The revoked key"))]),
            ]),
            ("/api/v1/projects/{org}/{project}/providers", ["get": operation("Provider settings (keys write-only)", id: "listProviders",
                parameters: [org, project], responses: [("200", json(listOf("ProviderSettings"), "Settings"))])]),
            ("/api/v1/projects/{org}/{project}/providers/{provider}", [
                "put": operation("Set a provider's key and base URL", id: "setProvider",
                    parameters: [org, project, parameter("provider", in: "path", "Provider", schema: ["type": "string",
                        "enum": .array(Provider.allCases.map { .string($0.rawValue) })])],
                    body: object([("api_key", string("Written, never read back")), ("base_url", nullable("string"))], required: ["api_key"]),
                    responses: [("200", json(ref("ProviderSettings"), "Saved"))]),
                "delete": operation("Remove a provider's settings", id: "removeProvider",
                    parameters: [org, project, parameter("provider", in: "path", "Provider")],
                    responses: [("204", ["description": "Removed"])]),
            ]),
            ("/api/v1/projects/{org}/{project}/fallbacks", ["get": operation("Fallback chains", id: "listFallbacks",
                parameters: [org, project], responses: [("200", json(listOf("FallbackChain"), "Chains"))])]),
            ("/api/v1/projects/{org}/{project}/fallbacks/{provider}/{model}", [
                "put": operation("Set the chain for requests to provider/model", id: "setFallback",
                    parameters: [org, project, parameter("provider", in: "path", "Provider"), parameter("model", in: "path", "Model")],
                    body: object([("to", ["type": "array", "items": string("provider/model"), "minItems": 1, "maxItems": 16])], required: ["to"]),
                    responses: [("200", json(ref("FallbackChain"), "Saved"))]),
                "delete": operation("Remove a chain", id: "removeFallback",
                    parameters: [org, project, parameter("provider", in: "path", "Provider"), parameter("model", in: "path", "Model")],
                    responses: [("204", ["description": "Removed"])]),
            ]),
            ("/api/v1/prices", ["get": operation("The price table (USD per 1M tokens)", id: "listPrices",
                responses: [("200", json(listOf("Price"), "Prices"))])]),
            ("/api/v1/prices/{model}", ["put": operation("Set a model's price (installation-wide tokens only)", id: "setPrice",
                parameters: [parameter("model", in: "path", "Model name (prices its dated variants too)")],
                body: object([("input", number), ("output", number), ("cached_input", nullable("number")), ("cache_write", nullable("number")),
                              ("provider", nullable("string"))], required: ["input", "output"]),
                responses: [("200", json(ref("Price"), "Saved"))])]),
            ("/api/v1/openapi.json", ["get": ["summary": "This document", "operationId": "getOpenAPI", "security": [],
                "responses": ["200": ["description": "OpenAPI 3.1", "content": ["application/json": ["schema": ["type": "object"]]]]]]]),
        ]
        let percentiles = object([("p50", nullable("number")), ("p95", nullable("number")), ("p99", nullable("number"))])
        let usageGroup = object([
            ("group", string()), ("requests", integer), ("prompt_tokens", integer), ("completion_tokens", integer),
            ("total_tokens", integer), ("cached_tokens", integer), ("cost_usd", number), ("unknown_cost_requests", integer),
            ("cache_hits", integer), ("errors", integer), ("latency_ms", percentiles), ("ttft_ms", percentiles),
        ])
        let schemas: [(String, JSON)] = [
            ("Error", object([("error", object([("message", string()), ("type", string()), ("param", nullable("string")),
                                                 ("code", nullable("string"))], required: ["message", "type"]))], required: ["error"])),
            ("AuditRow", object(AuditExport.columns.map { column in
                let schema: JSON
                switch column {
                case "seq", "status": schema = integer
                case "cache_hit", "stream": schema = boolean
                case "attempts": schema = ["type": "array", "items": object([("provider", string()), ("model", string()), ("status", integer),
                                                                            ("latency_ms", nullable("number")), ("error_code", nullable("string"))])]
                case "request_id", "time", "method", "route": schema = string()
                case "org_id", "project_id", "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "cache_write_tokens":
                    schema = nullable("integer")
                case "cost_usd", "latency_ms", "upstream_latency_ms", "ttft_ms": schema = nullable("number")
                default: schema = nullable("string")
                }
                return (column, schema)
            }, required: ["request_id", "time", "status"])),
            ("AuditPage", listOf("AuditRow", extra: [("next_cursor", nullable("string"))])),
            ("Usage", object([("object", ["const": "usage"]), ("from", string()), ("to", string()), ("group_by", string()),
                              ("data", ["type": "array", "items": usageGroup]), ("total", usageGroup)])),
            ("Project", object([("object", ["const": "project"]), ("name", string("org/project")), ("org", string()), ("project", string()),
                                ("plan", string()), ("rpm", nullable("integer")), ("tpm", nullable("integer")),
                                ("monthly_budget_usd", nullable("number")),
                                ("month_to_date", object([("month", string()), ("requests", integer), ("cost_usd", number)])),
                                ("created_at", string())])),
            ("Key", object([("object", ["const": "key"]), ("id", string()), ("name", nullable("string")), ("project", string()),
                            ("rpm", nullable("integer")), ("tpm", nullable("integer")), ("monthly_budget_usd", nullable("number")),
                            ("status", ["type": "string", "enum": ["active", "revoked"]]), ("created_at", string()),
                            ("revoked_at", nullable("string")), ("secret", string("Only in the answer that created the key"))])),
            ("ProviderSettings", object([("object", ["const": "provider_settings"]), ("provider", string()),
                                         ("api_key_last4", string("At most the key's last 4 characters")), ("base_url", nullable("string")),
                                         ("effective_base_url", string()), ("updated_at", string())])),
            ("FallbackChain", object([("object", ["const": "fallback_chain"]), ("provider", string()), ("model", string()),
                                      ("to", ["type": "array", "items": string()])])),
            ("Price", object([("object", ["const": "price"]), ("model", string()), ("provider", nullable("string")), ("input", number),
                              ("output", number), ("cached_input", nullable("number")), ("cache_write", nullable("number")),
                              ("source", nullable("string"))])),
        ]
        return [
            "openapi": "3.1.0",
            "info": ["title": "Deploxa AI Gateway admin API", "version": "1",
                     "description": "Audit log, usage, projects, keys, provider settings, fallback chains and prices. Send an admin token as a Bearer token; a scoped token sees only its org or project (404 outside it), a read-only token gets 403 on every change."],
            "servers": [["url": "/"]],
            "security": [["adminToken": []]],
            "paths": .object(JSONObject(paths)),
            "components": [
                "securitySchemes": ["adminToken": ["type": "http", "scheme": "bearer", "description": "An admin token (dpa_…) from deploxa-gateway admin-token create"]],
                "schemas": .object(JSONObject(schemas)),
            ],
        ]
    }
}
