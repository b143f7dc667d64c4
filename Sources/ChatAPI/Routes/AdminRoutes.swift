import HTTP
import JSONCore
import Storage

/// The admin API's routes (docs/API.md, "API keys"), guarded by CHAT_ADMIN_KEYS.
extension Worker {
    func installAdminRoutes() {
        let admin = AdminKeysAPI(admins: APIKeys(keys: shared.config.adminKeys), service: service)
        router.add(.get, "/admin/v1/keys") { req, _, r in admin.guarded(req, r) { admin.list(r) } }
        router.add(.post, "/admin/v1/keys") { req, _, r in admin.guarded(req, r) { admin.create(req, r) } }
        router.add(.get, "/admin/v1/keys/{id}") { req, p, r in admin.guarded(req, r) { admin.get(p["id"] ?? "", r) } }
        router.add(.delete, "/admin/v1/keys/{id}") { req, p, r in admin.guarded(req, r) { admin.revoke(p["id"] ?? "", r) } }
        router.add(.post, "/admin/v1/keys/{id}/revoke") { req, p, r in admin.guarded(req, r) { admin.revoke(p["id"] ?? "", r) } }
        router.add(.post, "/admin/v1/keys/{id}/rotate") { req, p, r in admin.guarded(req, r) { admin.rotate(p["id"] ?? "", r) } }
    }
}

/// Create, list, rotate and revoke client keys over HTTP, on the worker's own pool. Every answer
/// is a callback on the loop; a change made here reaches every instance through the key directory
/// each one polls.
final class AdminKeysAPI {
    private let admins: APIKeys
    private let service: ChatService
    private let store: KeyStore

    init(admins: APIKeys, service: ChatService) {
        self.admins = admins
        self.service = service
        store = KeyStore(pool: service.pool)
    }

    /// Runs `handler` for a request bearing an admin key; otherwise answers 404 (no admin keys
    /// configured: the API does not exist) or 401.
    func guarded(_ req: HTTPRequest, _ r: HTTPResponder, _ handler: () -> Void) {
        // Answers here hold secrets or key details: no cache may keep them.
        r.extraHeaders.add("Cache-Control", "no-store")
        guard !admins.isEmpty else {
            return r.respondError(status: 404, type: "not_found", message: "the admin API is off: set CHAT_ADMIN_KEYS")
        }
        let authorization = req.head.headers["Authorization"]
        guard admins.owner(forAuthorization: authorization) != nil else {
            var h = HTTPHeaders()
            h.add("WWW-Authenticate", "Bearer")
            let msg = authorization == nil ? "missing Authorization: Bearer <admin key>" : "invalid admin key"
            return r.respondError(status: 401, type: "unauthorized", message: msg, headers: h)
        }
        handler()
    }

    func list(_ r: HTTPResponder) {
        store.list { [self] result in
            switch result {
            case .failure(let e): failed(e, r)
            case .success(let keys): r.respondJSON(status: 200, KeyJSON.list(keys))
            }
        }
    }

    func create(_ req: HTTPRequest, _ r: HTTPResponder) {
        guard let body = service.jsonBody(req, r) else { return }
        let catalog = service.catalog
        let spec: KeySpec
        do {
            spec = try KeySpec(json: body, raw: req.body, isKnownModel: { catalog.lookup($0) != nil })
        } catch {
            return r.respond(error)
        }
        let secret = KeySecret.generate()
        store.create(name: spec.name, keyHash: secret.hash, prefix: secret.prefix, limits: spec.limits) { [self] result in
            switch result {
            case .failure(let e): failed(e, r)
            case .success(let k):
                service.logger.info("api key created", [("key_id", .string(k.id)), ("prefix", .string(k.prefix))])
                r.respondJSON(status: 201, KeyJSON.withSecret(k, secret: secret.secret))
            }
        }
    }

    func get(_ id: String, _ r: HTTPResponder) {
        guard isValidUUID(id) else { return notFound(id, r) }
        store.find(id) { [self] result in
            switch result {
            case .failure(let e): failed(e, r)
            case .success(nil): notFound(id, r)
            case .success(let k?): r.respondJSON(status: 200, KeyJSON.one(k))
            }
        }
    }

    /// Revoking twice is not an error: the key comes back with its first revocation time.
    func revoke(_ id: String, _ r: HTTPResponder) {
        guard isValidUUID(id) else { return notFound(id, r) }
        store.revoke(id: id) { [self] result in
            switch result {
            case .failure(let e): failed(e, r)
            case .success(nil): notFound(id, r)
            case .success(let k?):
                service.logger.info("api key revoked", [("key_id", .string(k.id)), ("prefix", .string(k.prefix))])
                r.respondJSON(status: 200, KeyJSON.one(k))
            }
        }
    }

    func rotate(_ id: String, _ r: HTTPResponder) {
        guard isValidUUID(id) else { return notFound(id, r) }
        let secret = KeySecret.generate()
        store.rotate(id: id, keyHash: secret.hash, prefix: secret.prefix) { [self] result in
            switch result {
            case .failure(let e): failed(e, r)
            case .success(let k?):
                service.logger.info("api key rotated", [("key_id", .string(k.id)), ("prefix", .string(k.prefix))])
                r.respondJSON(status: 200, KeyJSON.withSecret(k, secret: secret.secret))
            case .success(nil):
                // No such key, or a revoked one (which stays revoked): say which.
                store.find(id) { [self] found in
                    switch found {
                    case .success(let k?) where k.isRevoked:
                        r.respondError(status: 409, type: "conflict", message: "key \(id) is revoked and cannot be rotated; create a new one")
                    case .failure(let e): failed(e, r)
                    default: notFound(id, r)
                    }
                }
            }
        }
    }

    private func notFound(_ id: String, _ r: HTTPResponder) {
        r.respondError(status: 404, type: "not_found", message: "no key with id '\(id)'")
    }

    private func failed(_ e: StoreError, _ r: HTTPResponder) {
        if case .invalidArgument(let m) = e { return r.respond(ClientError.invalid(m, param: nil)) }
        service.storeFailed(e, r)
    }
}
