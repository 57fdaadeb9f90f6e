"""The Web API surface: route table, handlers (parse -> call state -> serialise), Dataverse errors."""
