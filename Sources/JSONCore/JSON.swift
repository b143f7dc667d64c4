// placeholder, replaced by the JSON work
public enum JSONPlaceholder {}
