CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT, count_text TEXT, owner_id INTEGER);
INSERT INTO items VALUES (1, 'a', 'A', '3', 1), (2, 'b', 'B', 'abc', 2), (3, 'c', 'OTHER', '7', 9);
CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO owners VALUES (1, 'Ann'), (2, 'Bob');
CREATE TABLE nodes (id INTEGER PRIMARY KEY, type TEXT NOT NULL, title TEXT, minutes INTEGER);
INSERT INTO nodes VALUES (1, 'Book', 'Dune', NULL), (2, 'Film', 'Alien', 117), (3, 'Book', 'Emma', NULL);
