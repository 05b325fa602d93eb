import Foundation

extension Dashboard {
    // MARK: 5. API keys

    /// `GET /dashboard/projects/ORG/PROJECT/keys` (and the response right after creating a key,
    /// with `newKey` set: its secret is shown once).
    public static func renderKeys(_ page: KeysPage) -> String {
        let s = page.session
        let base = DashboardURL.keys(page.project)
        let canEdit = !s.readOnly

        var banner: HTML = .empty
        if let k = page.newKey {
            let curl = curlExample(base: s.gatewayBaseURL, secret: k.secret, model: page.exampleModel)
            banner = """
            <section class="card secret-banner" id="new-key-banner" data-testid="new-key-banner" role="status">
            <h2>Key “\(k.name)” created</h2>
            <p class="secret-warning"><strong>Copy it now: it will not be shown again.</strong></p>
            <div class="secret-row">
            <label class="sr-only" for="new-key-secret">Secret of key \(k.name)</label>
            <input type="text" readonly id="new-key-secret" class="mono" value="\(k.secret)" spellcheck="false" autocomplete="off">
            <button type="button" class="btn btn-primary" id="copy-secret" data-copy-target="new-key-secret" hidden>Copy</button>
            </div>
            <p>Try it:</p>
            <pre class="code" id="new-key-curl" data-testid="new-key-curl"><code>\(curl)</code></pre>
            </section>
            """
        }

        let list: HTML
        if page.keys.isEmpty {
            list = emptyState("No keys yet.", canEdit ? "Create one below: applications send it as <code>Authorization: Bearer …</code>." : "Ask an administrator to create one.", testid: "keys-empty")
        } else {
            let rows: [HTML] = page.keys.map { k in
                let status: HTML = k.revoked.map { "\(badge("revoked", "error")) <span class=\"muted\">\(time($0))</span>" } ?? badge("active", "ok")
                var actions: HTML = .empty
                if canEdit && k.revoked == nil {
                    let limits = postForm(action: DashboardURL.path("/dashboard/keys", k.id, "limits"), csrf: s.csrf, testid: "key-limits-form", cls: "inline-form", content: """
                    \(input("RPM", name: "rpm", value: limitValue(k.rpm), type: "number", id: "rpm-\(k.id)", placeholder: "no limit", extra: " min=\"1\" step=\"1\" inputmode=\"numeric\""))
                    \(input("TPM", name: "tpm", value: limitValue(k.tpm), type: "number", id: "tpm-\(k.id)", placeholder: "no limit", extra: " min=\"1\" step=\"1\" inputmode=\"numeric\""))
                    \(input("Budget USD/month", name: "monthly_budget_usd", value: budgetValue(k.monthlyBudgetUSD), type: "number", id: "budget-\(k.id)", placeholder: "no limit", extra: " min=\"0\" step=\"0.01\" inputmode=\"decimal\""))
                    <button type="submit" class="btn btn-small">Save limits</button>
                    """)
                    let revoke = postForm(action: DashboardURL.path("/dashboard/keys", k.id, "revoke"), csrf: s.csrf, testid: "key-revoke-form", cls: "inline",
                                          confirm: "Revoke key \(k.name)? Applications using it will get 401 at once.", content: """
                    \(hidden("project", page.project.slug))
                    <button type="submit" class="btn btn-danger btn-small">Revoke</button>
                    """)
                    actions = """
                    <details class="row-actions"><summary class="btn btn-small btn-ghost">Edit limits</summary>\(limits)</details>
                    \(revoke)
                    """
                }
                return """
                <tr data-testid="key-row" id="key-\(k.id)"><td><code>\(k.id)</code></td><td>\(k.name)</td><td class="num">\(k.rpm.map { Format.int($0) } ?? "—")</td><td class="num">\(k.tpm.map { Format.int($0) } ?? "—")</td><td class="num">\(k.monthlyBudgetUSD.map { Format.usd($0) } ?? "—")</td><td>\(time(k.created))</td><td>\(status)</td><td class="actions">\(actions)</td></tr>
                """
            }
            list = """
            <div class="table-wrap"><table class="data" data-testid="keys-table">
            <thead><tr><th scope="col">ID</th><th scope="col">Name</th><th scope="col" class="num">RPM</th><th scope="col" class="num">TPM</th><th scope="col" class="num">Budget / month</th><th scope="col">Created (UTC)</th><th scope="col">Status</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>\(rows)</tbody>
            </table></div>
            """
        }

        let create: HTML = canEdit ? """
        <section class="card">
        <h2>Create a key</h2>
        \(postForm(action: base, csrf: s.csrf, id: "create-key-form", cls: "form-grid", content: """
        \(input("Name", name: "name", id: "create-name", placeholder: "e.g. backend-prod", extra: " required maxlength=\"100\""))
        \(input("Requests per minute", name: "rpm", type: "number", id: "create-rpm", placeholder: "no limit", extra: " min=\"1\" step=\"1\" inputmode=\"numeric\""))
        \(input("Tokens per minute", name: "tpm", type: "number", id: "create-tpm", placeholder: "no limit", extra: " min=\"1\" step=\"1\" inputmode=\"numeric\""))
        \(input("Monthly budget (USD)", name: "monthly_budget_usd", type: "number", id: "create-budget", placeholder: "no limit", extra: " min=\"0\" step=\"0.01\" inputmode=\"decimal\""))
        <div class="form-actions"><button type="submit" class="btn btn-primary">Create key</button><small class="hint">Empty limits mean no limit.</small></div>
        """))
        </section>
        """ : .empty

        let content: HTML = """
        \(pageHeader("API Keys", subtitle: "Project <strong>\(page.project.slug)</strong>", actions: "<a class=\"btn btn-ghost btn-small\" href=\"\(DashboardURL.settings(page.project))\">Project settings</a>"))
        \(readOnlyNote(s))
        \(banner)
        <section class="card">\(list)</section>
        \(create)
        """
        return Dashboard.page(title: "API Keys · \(page.project.slug)", session: s, section: .keys(page.project), content: content)
    }

    // MARK: 6. Settings

    /// `GET /dashboard/projects/ORG/PROJECT/settings`.
    public static func renderSettings(_ page: SettingsPage) -> String {
        let s = page.session
        let base = DashboardURL.settings(page.project)
        let canEdit = !s.readOnly

        // Plan and limits.
        let planOptions = page.plans.map { FilterOption(value: $0, label: $0.prefix(1).uppercased() + $0.dropFirst()) }
        let limits: HTML
        if canEdit {
            limits = postForm(action: base + "/limits", csrf: s.csrf, id: "project-limits-form", cls: "form-grid", content: """
            \(select("Plan", name: "plan", id: "settings-plan", options: planOptions, selected: page.plan, anyLabel: nil))
            \(input("Requests per minute", name: "rpm", value: limitValue(page.rpm), type: "number", id: "settings-rpm", placeholder: "no limit", extra: " min=\"1\" step=\"1\" inputmode=\"numeric\""))
            \(input("Tokens per minute", name: "tpm", value: limitValue(page.tpm), type: "number", id: "settings-tpm", placeholder: "no limit", extra: " min=\"1\" step=\"1\" inputmode=\"numeric\""))
            \(input("Monthly budget (USD)", name: "monthly_budget_usd", value: budgetValue(page.monthlyBudgetUSD), type: "number", id: "settings-budget", placeholder: "no limit", extra: " min=\"0\" step=\"0.01\" inputmode=\"decimal\""))
            <div class="form-actions"><button type="submit" class="btn btn-primary">Save</button><small class="hint">Empty limits mean no limit.</small></div>
            """)
        } else {
            limits = """
            <dl class="fields" data-testid="project-limits">
            <div class="dl-row"><dt>Plan</dt><dd>\(page.plan)</dd></div>
            <div class="dl-row"><dt>Requests per minute</dt><dd>\(page.rpm.map { Format.int($0) } ?? "no limit")</dd></div>
            <div class="dl-row"><dt>Tokens per minute</dt><dd>\(page.tpm.map { Format.int($0) } ?? "no limit")</dd></div>
            <div class="dl-row"><dt>Monthly budget</dt><dd>\(page.monthlyBudgetUSD.map { Format.usd($0) } ?? "no limit")</dd></div>
            </dl>
            """
        }

        // Provider keys.
        let providerTable: HTML
        if page.providerKeys.isEmpty {
            providerTable = emptyState("No provider keys for this project.", "Requests use the installation's provider keys, if any. Set a key below to bill this project's own account.", testid: "providers-empty")
        } else {
            let rows: [HTML] = page.providerKeys.map { p in
                let remove: HTML = canEdit ? postForm(action: DashboardURL.path(base + "/providers", p.provider, "delete"), csrf: s.csrf, testid: "provider-delete-form", cls: "inline",
                                                      confirm: "Remove the \(p.provider) key of \(page.project.slug)?", content: "<button type=\"submit\" class=\"btn btn-danger btn-small\">Remove</button>") : .empty
                return """
                <tr data-testid="provider-row"><td>\(p.provider)</td><td><code>…\(p.last4)</code></td><td>\(p.baseURL.map { "<code>\($0)</code>" as HTML } ?? "default")</td><td>\(time(p.updated))</td><td class="actions">\(remove)</td></tr>
                """
            }
            providerTable = """
            <div class="table-wrap"><table class="data" data-testid="providers-table">
            <thead><tr><th scope="col">Provider</th><th scope="col">Key</th><th scope="col">Base URL</th><th scope="col">Updated (UTC)</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>\(rows)</tbody>
            </table></div>
            """
        }
        var providerForms: [HTML] = []
        if canEdit {
            for provider in page.knownProviders {
                let current = page.providerKeys.first { $0.provider == provider }
                providerForms.append(postForm(action: base + "/providers", csrf: s.csrf, testid: "provider-form", cls: "inline-form provider-form", content: """
                \(hidden("provider", provider))
                <span class="form-title">\(provider)</span>
                \(input("API key", name: "api_key", type: "password", id: "provider-key-\(provider)", placeholder: current == nil ? "not set" : "…\(current?.last4 ?? "") (enter a new key to replace)", extra: " autocomplete=\"off\" spellcheck=\"false\" required"))
                \(input("Base URL", name: "base_url", value: current?.baseURL ?? "", type: "url", id: "provider-url-\(provider)", placeholder: "default"))
                <button type="submit" class="btn btn-small">\(current == nil ? "Set key" : "Replace key")</button>
                """))
            }
        }
        let providerFormsHTML: HTML = providerForms.isEmpty ? .empty : "<h3>Set a provider key</h3><div class=\"stack\">\(providerForms)</div>"

        // Fallback chains.
        let fallbackTable: HTML
        if page.fallbacks.isEmpty {
            fallbackTable = emptyState("No fallback chains.", "A chain retries a failed request on other models, e.g. <code>openai/gpt-4o</code> → <code>anthropic/claude-sonnet-4</code>.", testid: "fallbacks-empty")
        } else {
            let rows: [HTML] = page.fallbacks.map { fb in
                let del: HTML = canEdit ? postForm(action: base + "/fallbacks/delete", csrf: s.csrf, testid: "fallback-delete-form", cls: "inline",
                                                   confirm: "Delete the fallback chain of \(fb.primary)?", content: """
                \(hidden("primary", fb.primary))<button type="submit" class="btn btn-danger btn-small">Delete</button>
                """) : .empty
                let targets: [HTML] = fb.targets.map { "<code>\($0)</code>" }
                return "<tr data-testid=\"fallback-row\"><td><code>\(fb.primary)</code></td><td>\(HTML.join(targets, separator: " → "))</td><td class=\"actions\">\(del)</td></tr>"
            }
            fallbackTable = """
            <div class="table-wrap"><table class="data" data-testid="fallbacks-table">
            <thead><tr><th scope="col">Primary</th><th scope="col">Then try, in order</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>\(rows)</tbody>
            </table></div>
            """
        }
        let fallbackForm: HTML = canEdit ? postForm(action: base + "/fallbacks", csrf: s.csrf, id: "fallback-form", cls: "form-grid fallback-form", content: """
        \(input("Primary", name: "primary", id: "fallback-primary", placeholder: "openai/gpt-4o", extra: " required", hint: "provider/model"))
        \(input("Fall back to", name: "to", id: "fallback-to", placeholder: "anthropic/claude-sonnet-4, gemini/gemini-2.0-flash", extra: " required", hint: "comma-separated, in order"))
        <div class="form-actions"><button type="submit" class="btn btn-primary">Save chain</button></div>
        """) : .empty

        let content: HTML = """
        \(pageHeader("Settings", subtitle: "Project <strong>\(page.project.slug)</strong>", actions: "<a class=\"btn btn-ghost btn-small\" href=\"\(DashboardURL.keys(page.project))\">API keys</a>"))
        \(readOnlyNote(s))
        <section class="card" data-testid="settings-limits"><h2>Plan and limits</h2>\(limits)</section>
        <section class="card" data-testid="settings-providers"><h2>Provider keys</h2>\(providerTable)\(providerFormsHTML)</section>
        <section class="card" data-testid="settings-fallbacks"><h2>Fallback chains</h2>\(fallbackTable)\(fallbackForm)</section>
        """
        return Dashboard.page(title: "Settings · \(page.project.slug)", session: s, section: .settings(page.project), content: content)
    }

    // MARK: 7. Prices

    /// `GET /dashboard/prices`.
    public static func renderPrices(_ page: PricesPage) -> String {
        let s = page.session
        // Rates, not amounts: shown with the decimals they were set with ($0.075, not $0.08).
        func opt(_ x: Double?) -> String { x.map { Format.usdRate($0) } ?? "—" }
        let table: HTML
        if page.prices.isEmpty {
            table = emptyState("No prices.", "Without a price, a request's cost is recorded as unknown.", testid: "prices-empty")
        } else {
            let rows: [HTML] = page.prices.map { p in
                "<tr data-testid=\"price-row\"><td><code>\(p.model)</code></td><td>\(p.provider)</td><td class=\"num\">\(Format.usdRate(p.input))</td><td class=\"num\">\(Format.usdRate(p.output))</td><td class=\"num\">\(opt(p.cachedInput))</td><td class=\"num\">\(opt(p.cacheWrite))</td><td>\(p.source)</td><td>\(p.updated.map { time($0) } ?? "—")</td></tr>"
            }
            table = """
            <div class="table-wrap"><table class="data" data-testid="prices-table">
            <caption>USD per 1M tokens</caption>
            <thead><tr><th scope="col">Model</th><th scope="col">Provider</th><th scope="col" class="num">Input</th><th scope="col" class="num">Output</th><th scope="col" class="num">Cached input</th><th scope="col" class="num">Cache write</th><th scope="col">Source</th><th scope="col">Updated (UTC)</th></tr></thead>
            <tbody>\(rows)</tbody>
            </table></div>
            """
        }
        var edit: HTML = .empty
        if page.canEdit && !s.readOnly {
            let models: [HTML] = page.prices.map { "<option value=\"\($0.model)\"></option>" }
            edit = """
            <section class="card">
            <h2>Set a price</h2>
            \(postForm(action: "/dashboard/prices", csrf: s.csrf, id: "price-form", cls: "form-grid", content: """
            \(input("Model", name: "model", id: "price-model", placeholder: "gpt-4o", extra: " required list=\"price-models\""))
            <datalist id="price-models">\(models)</datalist>
            \(input("Input", name: "input", type: "number", id: "price-input", extra: " required min=\"0\" step=\"any\" inputmode=\"decimal\"", hint: "USD per 1M tokens"))
            \(input("Output", name: "output", type: "number", id: "price-output", extra: " required min=\"0\" step=\"any\" inputmode=\"decimal\"", hint: "USD per 1M tokens"))
            \(input("Cached input", name: "cached_input", type: "number", id: "price-cached-input", placeholder: "same as input", extra: " min=\"0\" step=\"any\" inputmode=\"decimal\"", hint: "USD per 1M tokens"))
            <div class="form-actions"><button type="submit" class="btn btn-primary">Save price</button></div>
            """))
            </section>
            """
        }
        let content: HTML = """
        \(pageHeader("Prices", subtitle: "What each model costs, in USD per 1M tokens. Costs are computed when a request completes."))
        \(readOnlyNote(s))
        <section class="card">\(table)</section>
        \(edit)
        """
        return Dashboard.page(title: "Prices", session: s, section: .prices, content: content)
    }

    // MARK: 8. Errors

    /// 404 / 403 / 500 (any status). With a session, keeps the nav.
    public static func renderError(_ page: ErrorPage) -> String {
        let (title, defaultMessage): (String, String) = {
            switch page.status {
            case 404: return ("Page not found", "There is nothing at this address. It may have been removed, or the link is mistyped.")
            case 403: return ("Not allowed", "Your token's scope does not include this page or action.")
            case 400: return ("Bad request", "The form could not be read. Go back and try again.")
            default: return page.status >= 500
                ? ("Something went wrong", "The dashboard hit an error. It has been logged; try again in a moment.")
                : ("Request failed", "The request could not be completed.")
            }
        }()
        let inner: HTML = """
        <section class="card error-card" data-testid="error-page">
        <p class="error-status">\(page.status)</p>
        <h1>\(title)</h1>
        <p>\(page.message ?? defaultMessage)</p>
        <p><a class="btn btn-primary" href="/dashboard" id="error-back">Back to the overview</a></p>
        </section>
        """
        if let s = page.session {
            return Dashboard.page(title: title, session: s, section: .none, content: inner)
        }
        return document(title: title, bodyClass: "login", body: "<main id=\"main\" class=\"login-main\">\(inner)</main>")
    }
}
