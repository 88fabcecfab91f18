//! What is wrong with an input, field by field, in the domain's words. Domain and use-case
//! modules return these; the HTTP layer turns them into a problem's `errors`
//! (`From<Violation> for problem::FieldError`), so the domain needs nothing from HTTP.

/// One field that breaks a rule, and the rule in words a client can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field's path in the input, e.g. `items[0].quantity`.
    pub field: String,
    pub message: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
