import Synchronization

/// The names of orchestrator and activity types, remembered for the process.
///
/// `static var name` defaults to `String(describing:)`, which demangles the type's metadata: it costs
/// more than the rest of scheduling an activity. An engine asks for the same few names over and over,
/// and so does every new instance of a service that starts many small orchestrations, so each type's
/// name is computed once. A name is fixed per type (it is how history refers to the code), so keeping
/// the first answer changes nothing.
enum TypeNames {
    private static let names = Mutex<[ObjectIdentifier: String]>([:])

    /// The name of `type`, computing it with `compute` the first time.
    static func name(of type: Any.Type, _ compute: () -> String) -> String {
        let key = ObjectIdentifier(type)
        if let name = names.withLock({ $0[key] }) { return name }
        // Computed outside the lock: `compute` is user code (a custom `name`).
        let name = compute()
        names.withLock { $0[key] = name }
        return name
    }
}
