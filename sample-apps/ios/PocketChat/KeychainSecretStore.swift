import Foundation
import Security

/// ``SecretStore`` on the iOS Keychain: generic passwords under the service
/// "dev.pocketlm.sample", readable after the first unlock and never synced or
/// restored to another device.
struct KeychainSecretStore: SecretStore {
    let service: String

    init(service: String = "dev.pocketlm.sample") {
        self.service = service
    }

    func get(_ name: String) -> String? {
        var query = base(name)
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        var result: CFTypeRef?
        guard SecItemCopyMatching(query as CFDictionary, &result) == errSecSuccess,
              let data = result as? Data else { return nil }
        return String(data: data, encoding: .utf8)
    }

    func put(_ name: String, _ value: String) {
        let data = Data(value.utf8)
        let update: [String: Any] = [
            kSecValueData as String: data,
            kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
        ]
        let status = SecItemUpdate(base(name) as CFDictionary, update as CFDictionary)
        if status == errSecItemNotFound {
            var add = base(name)
            add.merge(update) { _, new in new }
            SecItemAdd(add as CFDictionary, nil)
        }
    }

    func remove(_ name: String) {
        SecItemDelete(base(name) as CFDictionary)
    }

    /// The query that names one item.
    private func base(_ name: String) -> [String: Any] {
        [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: name,
        ]
    }
}
