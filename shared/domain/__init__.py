"""The domain both sides share, pure: the student file fold, the rules, the bonus rule, typed errors."""
