// SwiftUI observes the view models through Combine's ObservableObject and
// @Published. Linux has no Combine, and the view models are tested there, so
// these stand-ins keep the same source compiling: plain stored properties that
// nothing observes (the tests read the state directly).
#if !canImport(Combine)
/// Linux stand-in for Combine's `ObservableObject`.
public protocol ObservableObject: AnyObject {}

/// Linux stand-in for Combine's `@Published`: a plain stored value.
@propertyWrapper
public struct Published<Value> {
    public var wrappedValue: Value

    public init(wrappedValue: Value) {
        self.wrappedValue = wrappedValue
    }
}
#endif
