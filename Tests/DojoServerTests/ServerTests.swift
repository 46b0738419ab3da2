import DojoServer
import DojoService
import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Testing
import Yams

@Suite("DojoServer HTTP API", .serialized)
struct ServerTests {
    @Test("a job's life through the API: submit → 201, list, get with transitions, logs, completes, usage")
    func jobLifecycle() async throws {
        try await TestServer.with { s, client in
            let token = try await client.addTenant("vision", quota: 4, admin: s.admin)
            let r = try await client.call(.post, "/v1/jobs", token: token,
                                          json: #"{"name":"hello","command":["/bin/sh","-c","echo hi from $DOJO_JOB_ID; sleep 0.3"],"tiles":2}"#)
            #expect(r.status == 201, "\(r.body)")
            #expect(r.contentType?.hasPrefix("application/json") == true)
            let job = try r.decode(JobInfo.self)
            #expect(job.name == "hello" && job.tenant == "vision" && job.tiles == 2)

            let list = try await client.call(.get, "/v1/jobs", token: token)
            #expect(list.status == 200)
            #expect(try list.decode([JobInfo].self).map(\.id) == [job.id])

            let done = try await eventually {
                let j = try await client.call(.get, "/v1/jobs/\(job.id)", token: token).decode(JobInfo.self)
                return j.state == .completed
            }
            #expect(done)
            let j = try await client.call(.get, "/v1/jobs/\(job.id)", token: token).decode(JobInfo.self)
            #expect(j.transitions.map(\.state).contains(.running))
            #expect(j.transitions.last?.state == .completed)
            #expect(j.exitCode == 0 && j.tileSeconds > 0)

            let logs = try await client.call(.get, "/v1/jobs/\(job.id)/logs", token: token)
            #expect(logs.status == 200 && logs.contentType?.hasPrefix("text/plain") == true)
            #expect(logs.body.contains("hi from"), "\(logs.body)")
            let tail = try await client.call(.get, "/v1/jobs/\(job.id)/logs?tail=3", token: token)
            #expect(tail.status == 200 && tail.body.utf8.count <= 3)

            let completed = try await client.call(.get, "/v1/jobs?state=COMPLETED&limit=5", token: token).decode([JobInfo].self)
            #expect(completed.map(\.id) == [job.id])
            let running = try await client.call(.get, "/v1/jobs?state=PENDING,RUNNING", token: token).decode([JobInfo].self)
            #expect(running.isEmpty)

            let usage = try await client.call(.get, "/v1/usage", token: token).decode([UsageRow].self)
            #expect(usage.count == 1 && usage[0].tenant == "vision" && usage[0].tileSeconds > 0)

            let cluster = try await client.call(.get, "/v1/cluster", token: token).decode(ClusterStatus.self)
            #expect(cluster.tiles.count == cluster.healthy + cluster.failed)
            #expect(cluster.width * cluster.height * cluster.pods >= cluster.tiles.count)
        }
    }

    @Test("cancel: POST /cancel and DELETE both work; a finished job is 409")
    func cancel() async throws {
        try await TestServer.with { s, client in
            let token = try await client.addTenant("t", quota: 6, admin: s.admin)
            let a = try await client.submit(#"{"command":["/bin/sleep","30"],"tiles":1}"#, token: token)
            let b = try await client.submit(#"{"command":["/bin/sleep","30"],"tiles":1}"#, token: token)
            let ra = try await client.call(.post, "/v1/jobs/\(a.id)/cancel", token: token)
            #expect(ra.status == 200, "\(ra.body)")
            let rb = try await client.call(.delete, "/v1/jobs/\(b.id)", token: token)
            #expect(rb.status == 200, "\(rb.body)")
            #expect(try await eventually {
                let js = try await client.call(.get, "/v1/jobs", token: token).decode([JobInfo].self)
                return js.allSatisfy { $0.state == .cancelled }
            })
            let again = try await client.call(.post, "/v1/jobs/\(a.id)/cancel", token: token)
            #expect(again.status == 409 && again.errorMessage != nil, "\(again.body)")
        }
    }

    @Test("tenant isolation: another tenant's job is 404 on every job route, and is hidden from lists, cluster and usage")
    func isolation() async throws {
        try await TestServer.with { s, client in
            let alice = try await client.addTenant("alice", quota: 3, admin: s.admin)
            let bob = try await client.addTenant("bob", quota: 3, admin: s.admin)
            let job = try await client.submit(#"{"name":"secret","command":["/bin/sleep","30"],"tiles":1}"#, token: alice)
            _ = try await eventually { try await client.call(.get, "/v1/jobs/\(job.id)", token: alice).decode(JobInfo.self).state == .running }
            let missing = 999_999
            for (method, path) in [(HTTPRequest.Method.get, "/v1/jobs/ID"), (.get, "/v1/jobs/ID/logs"), (.post, "/v1/jobs/ID/cancel"), (.delete, "/v1/jobs/ID")] {
                let other = try await client.call(method, path.replacingOccurrences(of: "ID", with: "\(job.id)"), token: bob)
                let none = try await client.call(method, path.replacingOccurrences(of: "ID", with: "\(missing)"), token: bob)
                #expect(other.status == 404, "\(method) \(path): \(other.body)")
                #expect(none.status == 404)
                #expect(other.errorMessage != nil && !other.body.contains("alice") && !other.body.contains("secret"), "\(other.body)")
                // Same words as for a job that does not exist, but for the id.
                #expect(other.errorMessage?.replacingOccurrences(of: "\(job.id)", with: "N") == none.errorMessage?.replacingOccurrences(of: "\(missing)", with: "N"))
            }
            // The job was not cancelled by bob's attempts.
            #expect(try await client.call(.get, "/v1/jobs/\(job.id)", token: alice).decode(JobInfo.self).state == .running)
            #expect(try await client.call(.get, "/v1/jobs", token: bob).decode([JobInfo].self).isEmpty)
            let peek = try await client.call(.get, "/v1/jobs?tenant=alice", token: bob)
            let peekHidden = peek.status >= 400 ? peek.errorMessage != nil : ((try? peek.decode([JobInfo].self))?.isEmpty ?? false)
            #expect(peekHidden, "\(peek.status) \(peek.body)")
            let cluster = try await client.call(.get, "/v1/cluster", token: bob).decode(ClusterStatus.self)
            #expect(cluster.tiles.allSatisfy { $0.job == nil })
            #expect(cluster.busy == 1)
            let bobUsage = try await client.call(.get, "/v1/usage", token: bob).decode([UsageRow].self)
            #expect(bobUsage.allSatisfy { $0.tenant == "bob" })
            // The admin sees it.
            #expect(try await client.call(.get, "/v1/jobs/\(job.id)", token: s.admin).status == 200)
            let adminCluster = try await client.call(.get, "/v1/cluster", token: s.admin).decode(ClusterStatus.self)
            #expect(adminCluster.tiles.contains { $0.job == job.id })
            #expect(try await client.call(.post, "/v1/jobs/\(job.id)/cancel", token: alice).status == 200)
        }
    }

    @Test("tokens: missing, malformed and unknown are 401 on every /v1 route; a tenant doing admin work is 403")
    func auth() async throws {
        try await TestServer.with { s, client in
            let t = try await client.addTenant("t", quota: 2, admin: s.admin)
            let routes: [(HTTPRequest.Method, String, String?)] = [
                (.get, "/v1/jobs", nil), (.post, "/v1/jobs", #"{"command":["/bin/true"],"tiles":1}"#), (.get, "/v1/jobs/1", nil),
                (.post, "/v1/jobs/1/cancel", nil), (.delete, "/v1/jobs/1", nil), (.get, "/v1/jobs/1/logs", nil), (.get, "/v1/cluster", nil),
                (.get, "/v1/usage", nil), (.get, "/v1/tenants", nil), (.post, "/v1/tenants", #"{"name":"x","quota":1}"#),
                (.post, "/v1/tiles/0/fail", nil), (.post, "/v1/tiles/0/repair", nil),
            ]
            for (m, path, body) in routes {
                let none = try await client.call(m, path, json: body)
                #expect(none.status == 401 && none.errorMessage?.contains("token") == true, "\(m) \(path): \(none.body)")
                let bad = try await client.call(m, path, token: "not-a-token", json: body)
                #expect(bad.status == 401 && bad.errorMessage != nil, "\(m) \(path): \(bad.body)")
                let basic = try await client.call(m, path, json: body, headers: [("Authorization", "Basic dXNlcjpwYXNz")])
                #expect(basic.status == 401 && basic.errorMessage != nil)
            }
            for (m, path, body) in [(HTTPRequest.Method.post, "/v1/tenants", #"{"name":"x","quota":1}"#), (.post, "/v1/tiles/0/fail", nil), (.post, "/v1/tiles/0/repair", nil)] {
                let r = try await client.call(m, path, token: t, json: body)
                #expect(r.status == 403 && r.errorMessage != nil, "\(path): \(r.body)")
            }
            let tenants = try await client.call(.get, "/v1/tenants", token: s.admin).decode([TenantInfo].self)
            #expect(tenants.map(\.name) == ["t"] && tenants.allSatisfy { $0.token == nil })
            let dup = try await client.call(.post, "/v1/tenants", token: s.admin, json: #"{"name":"t","quota":1}"#)
            #expect(dup.status == 409 || dup.status == 400, "\(dup.body)")
        }
    }

    @Test("bad input: clear 4xx JSON errors that name the problem, and nothing written", arguments: [
        (#"{"command":["/bin/true"],"tiles":1,"gpus":4}"#, 400, "gpus"),
        (#"{"command":"/bin/true","tiles":1}"#, 400, "command"),
        (#"{"command":["/bin/true"],"tiles":"two"}"#, 400, "tiles"),
        (#"{"command":["/bin/true"],"tiles":1.5}"#, 400, "tiles"),
        (#"{"command":["/bin/true",3],"tiles":1}"#, 400, "command[1]"),
        (#"{"tiles":1}"#, 400, "command"),
        (#"{"command":["/bin/true"],"tiles":1"#, 400, "JSON"),
        (#"[1,2]"#, 400, "object"),
        (#""#, 400, "empty"),
        (#"{"command":["/bin/true"],"time_limit":"long"}"#, 400, "time_limit"),
        (#"{"command":["/bin/true"],"priority":true}"#, 400, "priority"),
    ])
    func badJobs(body: String, status: Int, word: String) async throws {
        try await TestServer.with { s, client in
            let t = try await client.addTenant("t", quota: 2, admin: s.admin)
            let r = try await client.call(.post, "/v1/jobs", token: t, json: body)
            #expect(r.status == status, "\(body) → \(r.status) \(r.body)")
            #expect(r.errorMessage?.contains(word) == true, "\(body) → \(r.body)")
            #expect(try await s.service.jobs(by: .admin).isEmpty)
        }
    }

    @Test("the service's own rejections come through with their status: too big for the machine, bad shape, no command")
    func serviceRejections() async throws {
        try await TestServer.with { s, client in
            let t = try await client.addTenant("t", quota: 6, admin: s.admin)
            for body in [#"{"command":["/bin/true"],"tiles":1000}"#, #"{"command":["/bin/true"],"shape":"7x9"}"#,
                         #"{"command":["/bin/true"],"shape":"banana"}"#, #"{"command":[],"tiles":1}"#,
                         #"{"command":["/bin/true"],"tiles":0}"#, #"{"command":["/bin/true"],"tiles":-3}"#,
                         #"{"command":["/bin/true"],"tiles":1,"shape":"1x1"}"#, #"{"command":["/bin/true"],"tiles":1,"time_limit":-1}"#,
                         #"{"command":["/bin/true"],"tiles":1,"tenant":"someone-else"}"#] {
                let r = try await client.call(.post, "/v1/jobs", token: t, json: body)
                #expect((400..<500).contains(r.status) && r.errorMessage != nil, "\(body) → \(r.status) \(r.body)")
            }
            #expect(try await s.service.jobs(by: .admin).isEmpty)
            let badTenant = try await client.call(.post, "/v1/jobs", token: s.admin, json: #"{"command":["/bin/true"],"tiles":1,"tenant":"nobody"}"#)
            #expect((400..<500).contains(badTenant.status) && badTenant.errorMessage != nil, "\(badTenant.body)")
            for body in [#"{"name":"x"}"#, #"{"name":"x","quota":"many"}"#, #"{"name":"x","quota":1,"extra":2}"#, #"{"name":5,"quota":1}"#] {
                let r = try await client.call(.post, "/v1/tenants", token: s.admin, json: body)
                #expect(r.status == 400 && r.errorMessage != nil, "\(body) → \(r.body)")
            }
        }
    }

    @Test("unknown routes 404, wrong methods 405 with Allow, bad ids and query parameters 400, oversized bodies 413")
    func routing() async throws {
        try await TestServer.with { s, client in
            let t = try await client.addTenant("t", quota: 2, admin: s.admin)
            for path in ["/v2/jobs", "/v1", "/v1/nothing", "/v1/jobs/1/stdout", "/v1/tiles/1/explode", "/favicon.ico"] {
                let r = try await client.call(.get, path, token: t)
                #expect(r.status == 404 && r.errorMessage != nil, "\(path): \(r.status) \(r.body)")
            }
            let unknownJob = try await client.call(.get, "/v1/jobs/424242", token: t)
            #expect(unknownJob.status == 404 && unknownJob.errorMessage?.contains("424242") == true, "\(unknownJob.body)")
            for (m, path) in [(HTTPRequest.Method.put, "/v1/jobs"), (.delete, "/v1/cluster"), (.post, "/healthz"), (.get, "/v1/jobs/1/cancel"), (.patch, "/v1/jobs/1")] {
                let r = try await client.call(m, path, token: t)
                #expect(r.status == 405 && r.errorMessage != nil, "\(m) \(path): \(r.status) \(r.body)")
            }
            for path in ["/v1/jobs/abc", "/v1/jobs/-1", "/v1/jobs/0", "/v1/jobs/99999999999999999999999", "/v1/jobs?limit=0",
                         "/v1/jobs?limit=x", "/v1/jobs?state=SLEEPING", "/v1/jobs?colour=red", "/v1/cluster?x=1", "/v1/jobs?limit=1&limit=2"] {
                let r = try await client.call(.get, path, token: t)
                #expect(r.status == 400 && r.errorMessage != nil, "\(path): \(r.status) \(r.body)")
            }
            let big = #"{"command":["/bin/true"],"name":""# + String(repeating: "x", count: 70_000) + #""}"#
            let r = try await client.call(.post, "/v1/jobs", token: t, json: big)
            #expect(r.status == 413 && r.errorMessage?.contains("limit") == true, "\(r.status) \(r.body.prefix(200))")
            #expect(try await s.service.jobs(by: .admin).isEmpty)
        }
    }

    @Test("tile failure through the API: the job goes to NODE_FAIL and is requeued; repair returns the tile")
    func tileFailure() async throws {
        try await TestServer.with { s, client in
            let t = try await client.addTenant("t", quota: 6, admin: s.admin)
            let job = try await client.submit(#"{"command":["/bin/sleep","30"],"tiles":1}"#, token: t)
            #expect(try await eventually { try await client.call(.get, "/v1/jobs/\(job.id)", token: t).decode(JobInfo.self).state == .running })
            let running = try await client.call(.get, "/v1/jobs/\(job.id)", token: t).decode(JobInfo.self)
            let tile = try #require(running.dpu?.tiles.first)
            let r = try await client.call(.post, "/v1/tiles/\(tile)/fail", token: s.admin)
            #expect(r.status == 200, "\(r.body)")
            #expect(r.body.contains("\(job.id)"))
            let c = try await client.call(.get, "/v1/cluster", token: s.admin).decode(ClusterStatus.self)
            #expect(c.failed == 1 && c.tiles.first { $0.id == tile }?.health == .failed)
            let after = try await client.call(.get, "/v1/jobs/\(job.id)", token: t).decode(JobInfo.self)
            #expect(after.transitions.map(\.state).contains(.nodeFail), "\(after.transitions)")
            #expect(try await client.call(.post, "/v1/tiles/\(tile)/repair", token: s.admin).status == 200)
            #expect(try await client.call(.get, "/v1/cluster", token: s.admin).decode(ClusterStatus.self).failed == 0)
            let outOfRange = try await client.call(.post, "/v1/tiles/100000/fail", token: s.admin)
            #expect((400..<500).contains(outOfRange.status) && outOfRange.errorMessage != nil, "\(outOfRange.body)")
        }
    }

    @Test("GET /metrics (admin) is Prometheus text with the queue, utilisation, jobs and tiles by state")
    func metrics() async throws {
        try await TestServer.with { s, client in
            let t = try await client.addTenant("t", quota: 6, admin: s.admin)
            _ = try await client.submit(#"{"command":["/bin/sleep","30"],"tiles":6}"#, token: t)
            _ = try await client.submit(#"{"command":["/bin/sleep","30"],"tiles":6}"#, token: t)
            _ = try await eventually { try await client.call(.get, "/v1/cluster", token: t).decode(ClusterStatus.self).running == 1 }
            #expect(try await client.call(.get, "/metrics").status == 401)
            #expect(try await client.call(.get, "/metrics", token: t).status == 403)
            let r = try await client.call(.get, "/metrics", token: s.admin)
            #expect(r.status == 200 && r.contentType?.hasPrefix("text/plain") == true)
            let lines = r.body.split(separator: "\n").map(String.init)
            for name in ["dojo_queue_length", "dojo_utilization", "dojo_jobs", "dojo_tiles"] {
                #expect(lines.contains { $0.hasPrefix("# TYPE \(name) ") }, "no # TYPE for \(name):\n\(r.body)")
            }
            #expect(lines.contains { $0.hasPrefix("dojo_jobs{state=\"RUNNING\"} 1") }, "\(r.body)")
            #expect(lines.contains { $0.hasPrefix("dojo_jobs{state=\"PENDING\"} 1") }, "\(r.body)")
            #expect(lines.contains { $0.hasPrefix("dojo_queue_length 1") }, "\(r.body)")
            #expect(lines.contains { $0.hasPrefix("dojo_utilization 1") }, "\(r.body)")
            #expect(lines.contains { $0.hasPrefix("dojo_tiles{state=") }, "\(r.body)")
            // Every sample line is NAME{labels} VALUE with a numeric value, and every name has a # TYPE.
            let typed = Set(lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
            for l in lines where !l.hasPrefix("#") && !l.isEmpty {
                let parts = l.split(separator: " ")
                #expect(parts.count == 2 && Double(parts[1]) != nil, "\(l)")
                let name = parts[0].split(separator: "{")[0]
                #expect(typed.contains(name) || typed.contains { name.hasPrefix($0 + "_") }, "no # TYPE for \(l)")
            }
        }
    }

    @Test("/, /healthz and /openapi.yaml need no token; the served OpenAPI document is the file, and names every route")
    func staticRoutes() async throws {
        try await TestServer.with { _, client in
            let h = try await client.call(.get, "/healthz")
            #expect(h.status == 200 && h.body.contains("ok"))
            let page = try await client.call(.get, "/")
            #expect(page.status == 200 && page.contentType?.hasPrefix("text/html") == true && page.body.contains("/v1/cluster"))
            let doc = try await client.call(.get, "/openapi.yaml")
            #expect(doc.status == 200 && doc.body == EmbeddedWeb.openAPI)
            for path in ["/v1/jobs:", "/v1/jobs/{id}:", "/v1/jobs/{id}/cancel:", "/v1/jobs/{id}/logs:", "/v1/cluster:", "/v1/usage:",
                         "/v1/tenants:", "/v1/tiles/{id}/fail:", "/v1/tiles/{id}/repair:", "/metrics:", "/healthz:", "/openapi.yaml:", "  /:"] {
                #expect(doc.body.contains(path), "\(path) missing from openapi.yaml")
            }
        }
    }

    @Test("admin actions are in the audit log (GET /v1/audit, admin only); a tenant's network policy; no token in a URL")
    func auditNetworkAndTokensInURLs() async throws {
        try await TestServer.with { s, client in
            let r = try await client.call(.post, "/v1/tenants", token: s.admin, json: #"{"name":"mpi","quota":2,"network":true}"#)
            #expect(r.status == 201, "\(r.body)")
            #expect(try r.decode(TenantInfo.self).network == true)
            let a = try await client.addTenant("a", quota: 2, admin: s.admin)
            #expect(try await client.call(.post, "/v1/tenants", token: s.admin, json: #"{"name":"x","quota":1,"network":"yes"}"#).status == 400)
            let j = try await client.submit(#"{"command":["/bin/sleep","30"],"tiles":1}"#, token: a)
            #expect(try await client.call(.post, "/v1/tiles/5/fail", token: s.admin).status == 200)
            #expect(try await client.call(.post, "/v1/tiles/5/repair", token: s.admin).status == 200)
            #expect(try await client.call(.post, "/v1/jobs/\(j.id)/cancel", token: s.admin).status == 200)
            // A tenant cancelling its own job is not an admin action.
            let k = try await client.submit(#"{"command":["/bin/sleep","30"],"tiles":1}"#, token: a)
            #expect(try await client.call(.post, "/v1/jobs/\(k.id)/cancel", token: a).status == 200)
            let log = try await client.call(.get, "/v1/audit", token: s.admin)
            let entries = try log.decode([AuditEntry].self)
            #expect(entries.map(\.action) == ["cancel-job", "repair-tile", "fail-tile", "create-tenant", "create-tenant"], "\(entries)")
            #expect(entries.allSatisfy { $0.actor == "admin" } && entries[0].target == "job \(j.id)" && entries.last?.detail.contains("network") == true)
            #expect(try await client.call(.get, "/v1/audit?limit=2", token: s.admin).decode([AuditEntry].self).count == 2)
            #expect(try await client.call(.get, "/v1/audit", token: a).status == 403)
            #expect(try await client.call(.get, "/v1/audit?limit=0", token: s.admin).status == 400)
            let tenants = try await client.call(.get, "/v1/tenants", token: s.admin).decode([TenantInfo].self)
            #expect(tenants.map(\.network) == [false, true])
            // The dashboard's token goes in the fragment, which a browser never sends: one in the query is refused.
            let leaked = try await client.call(.get, "/?token=\(a)")
            #expect(leaked.status == 400 && leaked.errorMessage?.contains("#token=") == true)
            #expect(try await client.call(.get, "/v1/jobs/\(j.id)/logs?tail=1048577", token: a).status == 400)
        }
    }

    @Test("openapi.yaml is well-formed YAML: OpenAPI 3.1, every route of the server, every $ref resolves")
    func openAPIDocument() throws {
        let doc = try #require(try Yams.load(yaml: EmbeddedWeb.openAPI) as? [String: Any])
        #expect(doc["openapi"] as? String == "3.1.0")
        let paths = try #require(doc["paths"] as? [String: Any])
        let want: [String: [String]] = [
            "/v1/jobs": ["get", "post"], "/v1/jobs/{id}": ["get", "delete"], "/v1/jobs/{id}/cancel": ["post"],
            "/v1/jobs/{id}/logs": ["get"], "/v1/cluster": ["get"], "/v1/usage": ["get"], "/v1/tenants": ["get", "post"],
            "/v1/tiles/{id}/fail": ["post"], "/v1/tiles/{id}/repair": ["post"], "/metrics": ["get"], "/healthz": ["get"],
            "/openapi.yaml": ["get"], "/": ["get"], "/v1/audit": ["get"],
        ]
        #expect(Set(paths.keys) == Set(want.keys))
        for (path, methods) in want {
            let item = try #require(paths[path] as? [String: Any], "\(path)")
            for m in methods {
                let op = try #require(item[m] as? [String: Any], "\(m) \(path)")
                #expect(op["responses"] is [String: Any], "\(m) \(path) has no responses")
                #expect(op["summary"] is String, "\(m) \(path): summary is not a string (a ': ' in a plain scalar?)")
            }
        }
        // Every $ref points at something.
        func refs(_ x: Any) -> [String] {
            if let d = x as? [String: Any] { return (d["$ref"] as? String).map { [$0] } ?? [] + d.values.flatMap(refs) }
            if let a = x as? [Any] { return a.flatMap(refs) }
            return []
        }
        for r in Set(refs(doc)) {
            var node: Any? = doc
            for key in r.dropFirst(2).split(separator: "/") { node = (node as? [String: Any])?[String(key)] }
            #expect(node != nil, "\(r) does not resolve")
        }
    }

    @Test("the embedded web files are the files in Sources/DojoServer/Web (run scripts/embed-data.py after editing)")
    func embeddedCopies() throws {
        let web = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/DojoServer/Web").standardized
        #expect(try String(contentsOf: web.appendingPathComponent("openapi.yaml"), encoding: .utf8) == EmbeddedWeb.openAPI)
        #expect(try String(contentsOf: web.appendingPathComponent("dashboard.html"), encoding: .utf8) == EmbeddedWeb.dashboard)
        #expect(EmbeddedWeb.openAPI.hasPrefix("openapi: 3.1"))
        // Self-contained: no scripts, styles or fonts from elsewhere.
        #expect(!EmbeddedWeb.dashboard.contains("http://") && !EmbeddedWeb.dashboard.contains("https://"))
    }
}
