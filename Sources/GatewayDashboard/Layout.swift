import Foundation

/// The dashboard's pages. Every `render…` returns a complete HTML document.
public enum Dashboard {
    /// Served by the controller at these paths (contents: `DashboardAssets`).
    public static let cssPath = "/dashboard/assets/app.css"
    public static let jsPath = "/dashboard/assets/app.js"

    /// Which nav entry is highlighted.
    enum Section: Equatable {
        case overview, requests, keys(ProjectRef), settings(ProjectRef), prices, none
    }

    // MARK: Document and chrome

    static func document(title: String, bodyClass: String, body: HTML) -> String {
        let doc: HTML = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="same-origin">
        <title>\(title) · Deploxa Gateway</title>
        <link rel="icon" href="data:,">
        <link rel="stylesheet" href="\(cssPath)">
        <script src="\(jsPath)" defer></script>
        </head>
        <body class="\(bodyClass)">
        \(body)
        </body>
        </html>

        """
        return doc.rendered
    }

    /// A signed-in page: header (brand, token, scope, logout), nav, flash, content.
    static func page(title: String, session: DashboardSession, section: Section, content: HTML) -> String {
        let body: HTML = """
        <a class="skip" href="#main">Skip to content</a>
        <header class="topbar">
        <a class="brand" href="/dashboard"><svg class="logo" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true"><path d="M4 4h9a7 7 0 0 1 0 14H9v2H4z" fill="currentColor"/><path d="M9 8h4a3 3 0 0 1 0 6H9z" class="logo-hole"/></svg><span>Deploxa</span></a>
        <div class="who" data-testid="session">
        <span class="token-name" data-testid="token-name">\(session.tokenName)</span>
        <span class="scope" data-testid="token-scope">\(session.scopeLabel)</span>
        \(postForm(action: "/dashboard/logout", csrf: session.csrf, id: "logout-form", cls: "inline", content: "<button type=\"submit\" class=\"btn btn-ghost btn-small\">Sign out</button>"))
        </div>
        </header>
        <div class="shell">
        \(nav(session: session, section: section))
        <main id="main" tabindex="-1">
        \(flash(session.flash))
        \(content)
        <p class="utc-note">All times UTC.</p>
        </main>
        </div>
        """
        return document(title: title, bodyClass: "app", body: body)
    }

    static func nav(session: DashboardSession, section: Section) -> HTML {
        func item(_ label: String, _ href: String, _ active: Bool, _ testid: String) -> HTML {
            "<li><a href=\"\(href)\" data-testid=\"\(testid)\"\(active ? " aria-current=\"page\"" as HTML : .empty)>\(label)</a></li>"
        }
        var projectItems: [HTML] = []
        for p in session.projects {
            let keysActive = section == .keys(p)
            let settingsActive = section == .settings(p)
            projectItems.append("""
            <li class="project\((keysActive || settingsActive) ? " current" as HTML : .empty)"><span class="project-name" title="\(p.slug)"><span>\(p.org)/</span><wbr><span>\(p.name)</span></span>
            <a href="\(DashboardURL.keys(p))" data-testid="nav-keys"\(keysActive ? " aria-current=\"page\"" as HTML : .empty)>API Keys</a>
            <a href="\(DashboardURL.settings(p))" data-testid="nav-settings"\(settingsActive ? " aria-current=\"page\"" as HTML : .empty)>Settings</a></li>
            """)
        }
        let anyProjectActive: Bool = {
            if case .keys = section { return true }
            if case .settings = section { return true }
            return false
        }()
        let projects: HTML = session.projects.isEmpty
            ? "<p class=\"nav-empty\">No projects yet. Create one with <code>deploxa-gateway project create</code>.</p>"
            : """
            <details class="projects" data-testid="project-picker"\(anyProjectActive || session.projects.count <= 6 ? " open" as HTML : .empty)>
            <summary>Projects <span class="count">\(session.projects.count)</span></summary>
            <ul>\(projectItems)</ul>
            </details>
            """
        return """
        <nav class="sidenav" aria-label="Dashboard">
        <ul class="nav-main">
        \(item("Overview", "/dashboard", section == .overview, "nav-overview"))
        \(item("Requests", "/dashboard/requests", section == .requests, "nav-requests"))
        \(item("Prices", "/dashboard/prices", section == .prices, "nav-prices"))
        </ul>
        \(projects)
        </nav>
        """
    }

    static func flash(_ flash: Flash?) -> HTML {
        guard let flash else { return .empty }
        let cls = flash.isError ? "flash flash-error" : "flash flash-success"
        let role = flash.isError ? "alert" : "status"
        return "<div class=\"\(cls)\" role=\"\(role)\" id=\"flash\" data-testid=\"flash\">\(flash.message)</div>"
    }

    // MARK: Forms

    /// The hidden CSRF field every POST form carries.
    static func csrfField(_ csrf: String) -> HTML {
        "<input type=\"hidden\" name=\"csrf\" value=\"\(csrf)\">"
    }

    /// A POST form with the CSRF field. `confirm`: question asked by app.js before submitting.
    static func postForm(action: String, csrf: String, id: String? = nil, testid: String? = nil, cls: String = "",
                         confirm: String? = nil, content: HTML) -> HTML {
        let idAttr: HTML = id.map { " id=\"\($0)\"" } ?? .empty
        let testAttr: HTML = testid.map { " data-testid=\"\($0)\"" } ?? .empty
        let confirmAttr: HTML = confirm.map { " data-confirm=\"\($0)\"" } ?? .empty
        let clsAttr: HTML = cls.isEmpty ? .empty : " class=\"\(cls)\""
        return "<form method=\"post\" action=\"\(action)\"\(idAttr)\(testAttr)\(clsAttr)\(confirmAttr)>\(csrfField(csrf))\(content)</form>"
    }

    static func hidden(_ name: String, _ value: String) -> HTML {
        "<input type=\"hidden\" name=\"\(name)\" value=\"\(value)\">"
    }

    /// A labelled input. `id` defaults to `prefix-name`.
    static func input(_ label: String, name: String, value: String = "", type: String = "text", id: String,
                      placeholder: String? = nil, extra: HTML = .empty, hint: String? = nil) -> HTML {
        let ph: HTML = placeholder.map { " placeholder=\"\($0)\"" } ?? .empty
        let hintHTML: HTML = hint.map { "<small class=\"hint\">\($0)</small>" } ?? .empty
        return """
        <label class="field" for="\(id)"><span>\(label)</span><input type="\(type)" name="\(name)" id="\(id)" value="\(value)"\(ph)\(extra)>\(hintHTML)</label>
        """
    }

    /// A labelled select; the current value is selected (and offered even if not in `options`).
    static func select(_ label: String, name: String, id: String, options: [FilterOption], selected: String, anyLabel: String?) -> HTML {
        var opts: [HTML] = []
        if let anyLabel { opts.append("<option value=\"\"\(selected.isEmpty ? " selected" as HTML : .empty)>\(anyLabel)</option>") }
        var all = options
        if !selected.isEmpty && !options.contains(where: { $0.value == selected }) { all.append(FilterOption(value: selected)) }
        for o in all {
            opts.append("<option value=\"\(o.value)\"\(o.value == selected ? " selected" as HTML : .empty)>\(o.label)</option>")
        }
        return "<label class=\"field\" for=\"\(id)\"><span>\(label)</span><select name=\"\(name)\" id=\"\(id)\">\(opts)</select></label>"
    }

    /// An optional integer limit as a form value ("" = no limit).
    static func limitValue(_ n: Int?) -> String { n.map(String.init) ?? "" }
    /// An optional dollar budget as a form value, without grouping ("" = no limit).
    static func budgetValue(_ x: Double?) -> String {
        guard let x else { return "" }
        var s = String(format: "%.4f", x)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    // MARK: Bits

    static func time(_ date: Date) -> HTML {
        "<time datetime=\"\(Format.iso(date))\">\(Format.dateTime(date))</time>"
    }

    static func badge(_ text: String, _ kind: String) -> HTML {
        "<span class=\"badge badge-\(kind)\">\(text)</span>"
    }

    static func statusBadge(_ status: Int) -> HTML {
        let kind = status < 300 ? "ok" : (status < 500 ? "warn" : "error")
        return badge(String(status), kind)
    }

    static func emptyState(_ title: String, _ detail: HTML, testid: String = "empty-state") -> HTML {
        "<div class=\"empty\" data-testid=\"\(testid)\"><p class=\"empty-title\">\(title)</p><p>\(detail)</p></div>"
    }

    static func pageHeader(_ title: String, subtitle: HTML? = nil, actions: HTML? = nil) -> HTML {
        let sub: HTML = subtitle.map { "<p class=\"subtitle\">\($0)</p>" } ?? .empty
        let act: HTML = actions.map { "<div class=\"page-actions\">\($0)</div>" } ?? .empty
        return "<div class=\"page-head\"><div><h1>\(title)</h1>\(sub)</div>\(act)</div>"
    }

    static func curlExample(base: String, secret: String, model: String) -> String {
        "curl \(base)/v1/chat/completions -H \"Authorization: Bearer \(secret)\" -H \"Content-Type: application/json\" -d '{\"model\":\"\(model)\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'"
    }

    static func readOnlyNote(_ session: DashboardSession) -> HTML {
        session.readOnly ? "<p class=\"note\" data-testid=\"read-only-note\">This token is read-only: changes are disabled.</p>" : .empty
    }
}
